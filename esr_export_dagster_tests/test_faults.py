"""Faults injected on the wire: WriteConflicts, lost connections, lost acknowledgements, killed runs.

Whatever happens, the invariants hold afterwards: every eligible record in exactly one file, sequence
numbers without gap or repeat, and a killed run's file finished by the next run under the same name
with the same records.
"""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER, EXPORT_BATCH

from . import kill_points
from .invariants import assert_export_invariants, file_placements, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
NEXT_DATE = RUN_DATE + dt.timedelta(days=1)


def test_write_conflicts_on_every_counter_operation_are_retried(harness, fault_proxy):
    records = harness.add("EOE", RUN_DATE + dt.timedelta(days=4), count=4)
    conflicts = fault_proxy.add(Rule(kill_points.counter_write, "write_conflict", times=2, per_shape=True))

    result = harness.run(RUN_DATE, "EOE", uri=fault_proxy.uri)

    assert result.success
    # open, number and close each failed twice before going through
    assert conflicts.applied == 6
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 6
    assert harness.database[APP_RECORDS].count_documents({"status": EXPORTED}) == len(records)
    assert list(files_on_disk(harness.export_dir)) == ["DE_EOE_APP_20210731_00000001.DAT"]
    assert_export_invariants(harness.database, harness.export_dir)


@pytest.mark.parametrize(
    "matches",
    [kill_points.opens_batch, kill_points.numbers_batch, kill_points.marks_exported, kill_points.closes_batch],
    ids=["open", "number", "mark", "close"],
)
@pytest.mark.parametrize("action", ["drop_before", "drop_after"])
def test_lost_connections_and_lost_acknowledgements_neither_gap_nor_duplicate(harness, fault_proxy, matches, action):
    harness.database[COUNTER].insert_one({"_id": "APP_NTH", "seq": 17})
    harness.add("NTH", RUN_DATE + dt.timedelta(days=3), count=3)
    fault = fault_proxy.add(Rule(matches, action))

    summary = harness.run_ok(RUN_DATE, "NTH", uri=fault_proxy.uri)

    assert fault.applied == 1
    assert summary["files_written_by_this_run"] == ["DE_NTH_APP_20210731_00000018.DAT"]
    assert harness.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
    assert_export_invariants(harness.database, harness.export_dir)


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


KILL_POINTS = {
    "before opening the batch": (kill_points.opens_batch, 0),
    "before numbering": (kill_points.numbers_batch, 0),
    "before the file ledger entry": (kill_points.starts_file, 0),
    "after the file, before marking": (kill_points.marks_exported, 0),
    "after marking, before the ledger": (kill_points.completes_file, 0),
    "before closing the batch": (kill_points.closes_batch, 0),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_at_any_point_is_finished_by_the_next_run(harness, fault_proxy, point):
    matches, skip = KILL_POINTS[point]
    first = harness.add("SEV", RUN_DATE + dt.timedelta(days=5), count=6)
    held = fault_proxy.add(Rule(matches, "hold", skip=skip))

    killed = harness.start_subprocess_run(RUN_DATE, "SEV", uri=fault_proxy.uri)
    assert held.reached.wait(120), killed.communicate()[1][-2000:]
    killed.kill()
    killed.wait()
    fault_proxy.clear()

    counter = harness.database[COUNTER].find_one({"_id": "APP_SEV"}) or {}
    open_batch = counter.get("openBatch")
    batch = open_batch and harness.database[EXPORT_BATCH].find_one({"_id": open_batch["id"]})
    later = harness.add("SEV", NEXT_DATE + dt.timedelta(days=5), count=3)
    summary = harness.run_ok(NEXT_DATE, "SEV")

    files = files_on_disk(harness.export_dir)
    if not batch:  # killed before anything was frozen: the next run simply exports everything
        assert list(files) == ["DE_SEV_APP_20210801_00000001.DAT"]
    else:
        interrupted = "DE_SEV_APP_20210731_00000001.DAT"
        assert list(files) == [interrupted, "DE_SEV_APP_20210801_00000002.DAT"]
        planned = {r["placementId"] for r in first if r["_id"] in set(batch["files"][0]["recordIds"])}
        assert set(file_placements(files[interrupted])) == planned == {r["placementId"] for r in first}
        assert set(file_placements(files["DE_SEV_APP_20210801_00000002.DAT"])) == {r["placementId"] for r in later}
        assert summary["files_written_by_this_run"] == ["DE_SEV_APP_20210801_00000002.DAT"]
    assert harness.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
    assert_export_invariants(harness.database, harness.export_dir)


def test_a_run_killed_between_the_files_of_a_split_export_is_completed_file_by_file(harness, fault_proxy):
    crowded = harness.add("LDN", RUN_DATE + dt.timedelta(days=30), count=85, post_number="LDN/RJ122/022/F1/001")
    held = fault_proxy.add(Rule(kill_points.marks_exported, "hold", skip=1))

    killed = harness.start_subprocess_run(RUN_DATE, "LDN", uri=fault_proxy.uri)
    assert held.reached.wait(120), killed.communicate()[1][-2000:]
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
