"""Real delivery destinations for the tests, on loopback ports: moto's S3 server, an OpenSSH sshd of the
test session's own, and a TCP gate that refuses connections on demand (a destination that is down)."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from . import system_tools

# Recognisable fake credentials: the secrets scan looks for them in everything the export shows.
FAKE_AWS_ACCESS_KEY_ID = "AKIAESRDELIVERYFAKE7"
FAKE_AWS_SECRET_ACCESS_KEY = "esrFakeSecret/DoNotLeak+0123456789abcdefghij"
S3_REGION = "eu-west-2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    return free_port()


def sshd_path() -> str | None:
    return system_tools.sshd()


@dataclass
class MotoS3:
    """moto's S3 API server in a thread of the test session."""

    server: ThreadedMotoServer
    endpoint_url: str

    @classmethod
    @contextlib.contextmanager
    def started(cls, port: int | None = None) -> Iterator[MotoS3]:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port or free_port(), verbose=False)
        server.start()
        host, bound = server.get_host_and_port()
        try:
            yield cls(server, f"http://{host}:{bound}")
        finally:
            server.stop()

    def client(self, endpoint_url: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=S3_REGION,
            aws_access_key_id=FAKE_AWS_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_AWS_SECRET_ACCESS_KEY,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def new_bucket(self) -> str:
        """A fresh bucket with versioning on, so a second put of a key would show as a second version."""
        name = f"esr-drop-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION})
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


@dataclass
class SshServer:
    """Debian's OpenSSH sshd run as its own process, with throwaway host and user keys, on a free port."""

    process: subprocess.Popen[bytes]
    port: int
    user: str
    user_key_file: Path
    known_hosts_file: Path
    root: Path
    log_file: Path

    @classmethod
    @contextlib.contextmanager
    def started(cls, workdir: Path) -> Iterator[SshServer]:
        sshd = sshd_path()
        if sshd is None:
            raise RuntimeError("sshd is not installed (make sshd)")
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o700)
        host_key, user_key = workdir / "host_key", workdir / "user_key"
        for key in (host_key, user_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = workdir / "authorized_keys"
        authorized.write_text((user_key.with_suffix(".pub")).read_text())
        os.chmod(authorized, 0o600)
        port = free_port()
        known_hosts = workdir / "known_hosts"
        host_public = host_key.with_suffix(".pub").read_text().split()
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress 127.0.0.1:{port}",
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    # The throwaway files live under pytest's temporary directory, whose parents sshd would
                    # otherwise inspect for ownership.
                    "StrictModes no",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            # sshd started as root separates privileges through this directory, which only a booted
            # system's service manager would create.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        root = workdir / "sftp-root"
        root.mkdir()
        log_file = workdir / "sshd.log"
        with open(log_file, "wb") as log:
            process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        server = cls(process, port, getpass.getuser(), user_key, known_hosts, root, log_file)
        try:
            server._wait_ready()
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log_file.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    if connection.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log_file.read_text()[-2000:]}")

    def new_folder(self) -> Path:
        """A fresh remote folder (on this machine) for one test's drop."""
        folder = self.root / uuid.uuid4().hex[:12]
        folder.mkdir()
        return folder

    def url(self, folder: Path, port: int | None = None) -> str:
        return f"sftp://{self.user}@127.0.0.1:{port or self.port}{folder}"


class TcpGate:
    """A loopback TCP forwarder to a real server that can refuse connections: a destination that is down.

    ``refuse_next(n)`` closes the next ``n`` connections at once (before a byte is forwarded); the ones
    after are forwarded to the real server. ``refused`` counts what was refused.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._to_refuse = 0
        self.refused = 0
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def refuse_next(self, count: int) -> None:
        with self._lock:
            self._to_refuse = count

    def refuse_all(self) -> None:
        self.refuse_next(10**9)

    def open(self) -> None:
        self.refuse_next(0)

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._to_refuse > 0
                if refuse:
                    self._to_refuse -= 1
                    self.refused += 1
                else:
                    self.accepted += 1
            if refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
