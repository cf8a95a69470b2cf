"""A throwaway PostgreSQL cluster for the production instance (deploy/dagster.yaml), one per test session.

Debian's `postgresql` package (installed by `make test` as root) puts initdb and pg_ctl in
/usr/lib/postgresql/<version>/bin (found there by system_tools.py) and starts no cluster: the tests make their own, on a free loopback port,
with trust authentication, and remove it afterwards. PostgreSQL refuses to run as root, so under root the
cluster belongs to the `postgres` OS user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from esr_export_dagster.local.mongo_server import free_port

from .system_tools import ToolNotFound, find_tool, postgres_bin_dir, require_tool

SUPERUSER = "esr_test"
# Trust authentication accepts any password; deploy/dagster.yaml still requires DAGSTER_PG_PASSWORD to be set.
PASSWORD = "unused-with-trust-authentication"


class PostgresUnavailable(RuntimeError):
    pass


def system_tool(name: str) -> str:
    """The path of a system tool, on PATH or wherever Debian installs it (system_tools.py)."""
    try:
        return require_tool(name)
    except ToolNotFound as missing:
        raise PostgresUnavailable(str(missing)) from None


def unavailable_reason() -> str | None:
    """Why no cluster can be started here, before trying: a tool is missing. None: everything is there."""
    if postgres_bin_dir() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed (`make test` installs Debian's postgresql as root)"
    if os.geteuid() == 0 and find_tool("runuser") is None:
        return (
            "util-linux's runuser is not installed: PostgreSQL refuses to run as root, so the cluster is started "
            "as the `postgres` user through runuser"
        )
    return None


@dataclass
class PostgresCluster:
    bin_dir: Path
    root: Path
    port: int
    os_user: str | None  # None: the current user

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def _run(self, *command: str) -> None:
        prefix = [system_tool("runuser"), "-u", self.os_user, "--"] if self.os_user else []
        completed = subprocess.run(
            prefix + [str(self.bin_dir / command[0]), *command[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if completed.returncode != 0:
            raise PostgresUnavailable(f"{command[0]} failed: {completed.stderr[-2000:]}")

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8")
        # Its socket in its own directory, not /var/run/postgresql (root's, and shared with anything else).
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "-t", "60", "start"
        )
        return self

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop")
        except (PostgresUnavailable, subprocess.TimeoutExpired):
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
                os.kill(pid, 9)
                time.sleep(1)

    def connect(self, database: str = "postgres"):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=PASSWORD, dbname=database)

    def create_database(self, name: str) -> str:
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return name

    def environment(self, database: str) -> dict[str, str]:
        """The DAGSTER_PG_* variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": SUPERUSER,
            "DAGSTER_PG_PASSWORD": PASSWORD,
            "DAGSTER_PG_DB": database,
        }


@contextlib.contextmanager
def throwaway_cluster(base_dir: Path) -> Iterator[PostgresCluster]:
    """Under root, in a directory of the `postgres` user's own outside pytest's 0700 base directory (which
    that user cannot traverse), removed again at the end; otherwise under ``base_dir``."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("PostgreSQL is not installed (`make test` installs Debian's as root)")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("PostgreSQL refuses to run as root and there is no `postgres` OS user") from None
        root = Path(tempfile.mkdtemp(prefix="esr-test-postgres-"))
        os.chown(root, owner.pw_uid, owner.pw_gid)
        cluster = PostgresCluster(bin_dir, root, free_port(), os_user="postgres")
    else:
        root = base_dir
        cluster = PostgresCluster(bin_dir, root, free_port(), os_user=None)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        if os.geteuid() == 0:
            shutil.rmtree(root, ignore_errors=True)
