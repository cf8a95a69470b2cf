"""Faults injected on the wire: lost connections (while selecting, and at each write of the protocol), lost
acknowledgements, a step that keeps failing, a split export killed between files. (WriteConflicts and a run killed at each protocol step are in
test_export_invariants.py, for both streams.)

Whatever happens, the invariants hold afterwards: every eligible record in exactly one file, sequence
numbers without gap or repeat, and a killed run's file finished by the next run under the same name
with the same records.
"""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import TO_EXPORT
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER

from . import kill_points
from .conftest import each_stream
from .invariants import assert_export_invariants, file_placements, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
NEXT_DATE = RUN_DATE + dt.timedelta(days=1)


@pytest.mark.parametrize(
    "matches",
    [kill_points.opens_batch, kill_points.numbers_batch, kill_points.marks_exported, kill_points.closes_batch],
    ids=["open", "number", "mark", "close"],
)
@pytest.mark.parametrize("action", ["drop_before", "drop_after"])
def test_lost_connections_and_lost_acknowledgements_neither_gap_nor_duplicate(harness, fault_proxy, matches, action):
    harness.database[COUNTER].insert_one({"_id": harness.counter_id("NTH"), "seq": 17})
    harness.add("NTH", RUN_DATE + dt.timedelta(days=3), count=3)
    fault = fault_proxy.add(Rule(matches, action))

    summary = harness.run_ok(RUN_DATE, "NTH", uri=fault_proxy.uri)

    assert fault.applied == 1
    assert summary["files_written_by_this_run"] == ["DE_NTH_APP_20210731_00000018.DAT"]
    assert harness.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
    assert_export_invariants(harness.database, harness.export_dir)


@each_stream
@pytest.mark.parametrize("action", ["drop_before", "drop_after"])
def test_a_connection_lost_while_selecting_is_retried_and_the_day_exported(harness, fault_proxy, action):
    harness.add_due("NTH", RUN_DATE, count=3)
    # Three in a row: more than pymongo's own single retry of a read can absorb.
    fault = fault_proxy.add(Rule(kill_points.selects_records, action, times=3))

    summary = harness.run_ok(RUN_DATE, "NTH", uri=fault_proxy.uri)

    assert fault.applied == 3
    assert summary["files_written_by_this_run"] == [harness.file_name("NTH", RUN_DATE, 1)]
    assert harness.records.count_documents({"status": TO_EXPORT}) == 0
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_a_step_that_keeps_failing_fails_the_run_and_changes_nothing_it_should_not(harness, fault_proxy):
    harness.add("YHD", RUN_DATE + dt.timedelta(days=3), count=2)
    fault_proxy.add(Rule(kill_points.numbers_batch, "write_conflict", times=1000))

    result = harness.run(RUN_DATE, "YHD", uri=fault_proxy.uri)

    assert not result.success
    assert files_on_disk(harness.export_dir) == {}
    assert harness.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 2
    # The batch stays open, unnumbered: the next run finishes it, no number was burned.
    fault_proxy.clear()
    summary = harness.run_ok(RUN_DATE, "YHD")
    assert summary["files_for_partition"][0]["name"] == "DE_YHD_APP_20210731_00000001.DAT"
    assert_export_invariants(harness.database, harness.export_dir)


def test_a_run_killed_between_the_files_of_a_split_export_is_completed_file_by_file(harness, fault_proxy):
    crowded = harness.add("LDN", RUN_DATE + dt.timedelta(days=30), count=85, post_number="LDN/RJ122/022/F1/001")
    held = fault_proxy.add(Rule(kill_points.marks_exported, "hold", skip=1))

    killed = harness.start_subprocess_run(RUN_DATE, "LDN", uri=fault_proxy.uri)
    kill_points.wait_until_reached(held, killed)
    killed.kill()
    killed.wait()
    fault_proxy.clear()
    written_before = {name: file_placements(path) for name, path in files_on_disk(harness.export_dir).items()}

    harness.run_ok(RUN_DATE, "LDN")

    after = {name: file_placements(path) for name, path in files_on_disk(harness.export_dir).items()}
    assert list(after) == [f"DE_LDN_APP_20210731_0000000{n}.DAT" for n in (1, 2, 3)]
    for name, placements in written_before.items():
        assert after[name] == placements
    assert sum(len(p) for p in after.values()) == len(crowded)
    assert_export_invariants(harness.database, harness.export_dir)
