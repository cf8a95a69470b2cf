"""What the code location serves (assets, partitions, policies, checks, jobs, schedules, sensors, tags)
matches golden/definitions.yaml: an unintended change to any of them fails here, as one readable diff.
A change that is meant: `make definitions-snapshot`, then commit the golden file with it."""

from __future__ import annotations

import difflib

from . import definitions_snapshot
from .conftest import PROJECT_ROOT
from .definitions_snapshot import GOLDEN, render_in_clean_process


def test_the_definitions_match_the_golden_snapshot():
    now = render_in_clean_process()
    golden = GOLDEN.read_text(encoding="utf-8")

    diff = "".join(
        difflib.unified_diff(
            golden.splitlines(keepends=True),
            now.splitlines(keepends=True),
            fromfile=str(GOLDEN.relative_to(PROJECT_ROOT)),
            tofile="the definitions now",
        )
    )
    assert not diff, f"The definitions changed; if that is meant, run `make definitions-snapshot` and commit:\n{diff}"


def test_the_refresh_command_rewrites_the_golden_file_from_the_definitions(monkeypatch, tmp_path, capsys):
    golden = tmp_path / "definitions.yaml"
    golden.write_text("stale\n", encoding="utf-8")
    monkeypatch.setattr(definitions_snapshot, "GOLDEN", golden)

    assert definitions_snapshot.main(["--write"]) == 0

    assert golden.read_text(encoding="utf-8") == GOLDEN.read_text(encoding="utf-8")
    assert str(golden) in capsys.readouterr().out
