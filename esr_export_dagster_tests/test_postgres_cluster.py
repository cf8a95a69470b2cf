"""The PostgreSQL test cluster's own plumbing: it must start from any shell `make test` may run in."""

from __future__ import annotations

import shutil

import pytest

from .postgres_cluster import PostgresUnavailable, system_tool


@pytest.mark.skipif(
    shutil.which("runuser", path="/usr/sbin:/sbin") is None, reason="util-linux's runuser is not installed"
)
def test_runuser_is_found_from_a_root_shell_whose_path_lacks_sbin(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")

    assert system_tool("runuser").endswith("sbin/runuser")


def test_a_missing_system_tool_is_named_in_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")

    with pytest.raises(PostgresUnavailable, match="no-such-tool-here is not installed"):
        system_tool("no-such-tool-here")
