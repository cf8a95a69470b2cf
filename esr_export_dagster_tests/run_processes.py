"""A partition's run in a process of its own, forked from a server that has already imported Dagster and the
libraries under it.

A fresh interpreter spends 4-5 s of CPU importing Dagster, SQLAlchemy, pandas and botocore before the run
starts; the suite starts dozens of such processes (13 at once in the incident replay), which on the 2-core
machines was minutes of CPU. Each process here is still separate: its own pid, environment, working
directory, MongoDB connections and Dagster instance, killed with SIGKILL like a run worker. The project's own
package is imported in the process after its environment is set, as a fresh interpreter would, because some
settings are read when the code location loads.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

# Third-party only: nothing here reads an ESR_ setting at import.
PRELOADED = ["dagster", "dagster_aws.s3", "dagster_postgres", "pandas", "pymongo", "boto3", "paramiko"]

_context: multiprocessing.context.ForkServerContext | None = None


def _forkserver() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOADED)
    return _context


def _run_module(module: str, args: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """In the forked process: the environment, directory, argv and standard streams a fresh interpreter
    running ``python -m module args`` would have."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for stream, path in ((sys.stdout, out), (sys.stderr, err)):
        stream.flush()
        descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(descriptor, stream.fileno())
        os.close(descriptor)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class RunProcess:
    """The part of subprocess.Popen (text mode, stdout and stderr piped) that the tests use."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self._streams = tempfile.TemporaryDirectory(prefix="esr-run-")
        self._out = os.path.join(self._streams.name, "stdout")
        self._err = os.path.join(self._streams.name, "stderr")
        for path in (self._out, self._err):
            Path(path).touch()
        self._process = _forkserver().Process(
            target=_run_module, args=(module, args, env, str(cwd), self._out, self._err), daemon=False
        )
        self._process.start()
        self.pid = self._process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self._process.name, timeout or 0)
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        out = Path(self._out).read_text(errors="replace")
        err = Path(self._err).read_text(errors="replace")
        with contextlib.suppress(OSError):
            self._streams.cleanup()
        return out, err

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
