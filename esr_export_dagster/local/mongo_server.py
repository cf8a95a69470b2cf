"""The embedded MongoDB stand-in (nx-27017, a MongoDB wire-protocol server over SQLite).

A real ``mongod`` cannot be installed on the development and CI machines; nx-27017 speaks the wire
protocol over TCP, so the webserver, the daemon and run workers (separate processes) can share it.
Each server gets its own data directory and pid file: the default pid file is machine-wide and a
second server would refuse to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError


class LocalMongoError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_command() -> str:
    beside_python = Path(sys.executable).with_name("nx-27017")
    found = str(beside_python) if beside_python.exists() else shutil.which("nx-27017")
    if not found:
        raise LocalMongoError("nx-27017 is not installed: install the project with its 'local' extra")
    return found


class LocalMongoServer:
    """Start with ``start()``, stop with ``stop()``; also a context manager."""

    def __init__(self, data_dir: str | os.PathLike[str], port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "nx-27017.log"

    def start(self, timeout: float = 20.0) -> LocalMongoServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "nx-27017.pid"
        pid_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                _server_command(),
                "--data-dir",
                str(self.data_dir),
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--pid-file",
                str(pid_file),
                "--log-file",
                str(self.log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise LocalMongoError(f"nx-27017 exited with code {self.process.returncode}; see {self.log_file}")
            try:
                with MongoClient(self.uri, serverSelectionTimeoutMS=250) as client:
                    client.admin.command("ping")
                return
            except PyMongoError:
                time.sleep(0.1)
        self.stop()
        raise LocalMongoError(f"nx-27017 did not answer on port {self.port} within {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> LocalMongoServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
