"""`make run` and the partition grid's first date: a demo that reads as working, and says what it did."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.esr_csv import parse_export_file_name
from esr_export_dagster.local.cli import DEMO_FAILED_CHECK
from esr_export_dagster.partitions import (
    DEFAULT_FIRST_PARTITION_DATE,
    FIRST_PARTITION_DATE_VARIABLE,
    first_partition_date,
)

from .conftest import PROJECT_ROOT, isolated_env, local_folders_under, run_in_new_interpreter


def test_the_first_partition_date_defaults_to_the_incident_backfills_first_day():
    assert first_partition_date({}) == DEFAULT_FIRST_PARTITION_DATE == "2021-07-01"
    assert first_partition_date({FIRST_PARTITION_DATE_VARIABLE: "2026-11-01"}) == "2026-11-01"


@pytest.mark.parametrize("value", ["01/11/2026", "2026-13-01", "last week", "2999-01-01"])
def test_a_bad_first_partition_date_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=FIRST_PARTITION_DATE_VARIABLE):
        first_partition_date({FIRST_PARTITION_DATE_VARIABLE: value})


def test_the_code_location_starts_its_grid_on_the_configured_date():
    probe = (
        "from esr_export_dagster.partitions import export_partitions;"
        "print(export_partitions.partitions_defs[0].partitions_def.get_first_partition_key())"
    )
    loaded = run_in_new_interpreter(probe, **{FIRST_PARTITION_DATE_VARIABLE: "2026-11-01"})
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "2026-11-01"


@pytest.mark.integration
def test_make_run_twice_prints_true_lines_and_no_dagster_warnings(mongo_uri, database, tmp_path):
    env = isolated_env(
        PYTHONPATH=str(PROJECT_ROOT),
        ESR_MONGODB_URI=mongo_uri,
        ESR_MONGODB_DATABASE=database.name,
        **local_folders_under(tmp_path),
    )

    def make_run() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "esr_export_dagster.local.cli", "run"],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "Warning" not in done.stdout + done.stderr, done.stderr[-2000:]
        return done.stdout

    first, second = make_run(), make_run()

    first_lines = deanery_lines(first)
    assert len(first_lines) == 2 * len(DEANERIES)
    app_lines = first_lines[: len(DEANERIES)]
    assert all(" exported" in line and ", wrote DE_" in line for line in app_lines), app_lines
    # One shared sequence per file type (the default scope): the deaneries' files numbered from 1 in the order
    # they were written, APP and DNC each in its own sequence. One file per deanery, except LDN's crowded post
    # (45 starters), which ESR takes as two APP files: 14 APP numbers, 13 DNC numbers.
    for file_type, lines, crowded in (("APP", app_lines, {"LDN": 2}), ("DNC", first_lines[len(DEANERIES) :], {})):
        written = [parse_export_file_name(name) for line in lines for name in re.findall(r"DE_\w+?\.DAT", line)]
        expected = [(file_type, d) for d in DEANERIES for _ in range(crowded.get(d, 1))]
        assert [(f.file_type, f.deanery) for f in written] == expected, lines
        assert [f.sequence for f in written] == list(range(1, len(expected) + 1)), lines
    assert "checks failed" not in first
    (explanation,) = [line for line in first.splitlines() if DEMO_FAILED_CHECK in line]
    assert "on purpose" in explanation and "demo data" in explanation
    # ESR's stand-in answers every delivered file; one line per deanery and stream says what ESR did.
    esr_lines = esr_answer_lines(first)
    assert len(esr_lines) == 2 * len(DEANERIES), esr_lines
    assert all(
        re.fullmatch(r"[A-Z]{3}: ESR loaded \d+( \(\d+ with warnings\))?, rejected \d+.*", line) for line in esr_lines
    )
    assert any(re.search(r"rejected 1 \(placement \d+\)", line) for line in esr_lines[: len(DEANERIES)]), esr_lines
    second_lines = deanery_lines(second)
    assert len(second_lines) == 2 * len(DEANERIES)
    assert all("nothing new: already exported" in line for line in second_lines), second_lines
    assert "wrote" not in second and "->" not in second
    assert esr_answer_lines(second) == [] and "no new confirmation from ESR" in second
    assert os.listdir(env["ESR_EXPORT_DIR"])


def deanery_lines(output: str) -> list[str]:
    """The export's lines per deanery (ESR's answers, printed after them, are not among them)."""
    return [
        line for line in output.splitlines() if line.strip()[:4].rstrip(":") in DEANERIES and "ESR loaded" not in line
    ]


def esr_answer_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "ESR loaded" in line]
