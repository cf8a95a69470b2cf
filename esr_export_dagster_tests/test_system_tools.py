"""The system tools the tests start (runuser, initdb, pg_ctl, sshd, Chromium) are found from any shell
`make test` may run in, or named, with every place searched, when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .postgres_cluster import PostgresUnavailable, system_tool, throwaway_cluster
from .postgres_cluster import unavailable_reason as postgres_unavailable_reason
from .system_tools import SYSTEM_DIRECTORIES, ToolNotFound, chromium, find_tool, postgres_directories, require_tool

# What `sudo -s` or a container's root shell may hand over: no sbin directory at all.
PATH_WITHOUT_SBIN = "/usr/local/bin:/usr/bin:/bin"


def installed_in_sbin(name: str) -> bool:
    return any(os.access(Path(d) / name, os.X_OK) for d in ("/usr/sbin", "/sbin"))


@pytest.mark.skipif(not installed_in_sbin("runuser"), reason="util-linux's runuser is not installed")
def test_runuser_is_found_from_a_root_shell_whose_path_lacks_sbin(monkeypatch):
    monkeypatch.setenv("PATH", PATH_WITHOUT_SBIN)

    assert system_tool("runuser").endswith("sbin/runuser")


@pytest.mark.skipif(not installed_in_sbin("sshd"), reason="OpenSSH's sshd is not installed")
def test_sshd_is_found_from_a_shell_whose_path_lacks_sbin(monkeypatch):
    monkeypatch.setenv("PATH", PATH_WITHOUT_SBIN)

    assert find_tool("sshd").endswith("sbin/sshd")


def test_a_missing_system_tool_is_named_in_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(PostgresUnavailable, match="no-such-tool-here is not installed") as raised:
        system_tool("no-such-tool-here")
    for directory in SYSTEM_DIRECTORIES:
        assert directory in str(raised.value)


def test_a_missing_tool_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(ToolNotFound, match=r"no-such-browser or no-such-browser-2 is not installed \(make browser\)"):
        require_tool("no-such-browser", "no-such-browser-2", install_hint="make browser")


def test_the_developers_path_wins_over_the_system_directories(monkeypatch, tmp_path):
    own = tmp_path / "bin"
    own.mkdir()
    (own / "sshd").write_text("#!/bin/sh\n")
    (own / "sshd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{own}:{PATH_WITHOUT_SBIN}")

    assert find_tool("sshd") == str(own / "sshd")


def test_debians_postgresql_versions_are_searched_newest_first(tmp_path):
    for version in ("9", "15", "16"):
        (tmp_path / version / "bin").mkdir(parents=True)

    assert postgres_directories(tmp_path) == [str(tmp_path / v / "bin") for v in ("16", "15", "9")]


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed")
def test_chromium_is_found_from_a_shell_whose_path_lacks_sbin(monkeypatch):
    monkeypatch.setenv("PATH", PATH_WITHOUT_SBIN)

    assert Path(chromium()).name in ("chromium", "chromium-browser")


def test_the_postgres_cluster_starts_from_a_root_shell_whose_path_lacks_sbin(monkeypatch, tmp_path):
    """What all seven daemon scenarios need: before, they errored at setup from such a shell."""
    monkeypatch.setenv("PATH", PATH_WITHOUT_SBIN)
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)

    with throwaway_cluster(tmp_path) as cluster:
        connection = cluster.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                assert cursor.fetchone() == (1,)
        finally:
            connection.close()
