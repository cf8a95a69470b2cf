"""The invariants both daily exports (APP and DNC) must keep, through the real Dagster job, against a real
MongoDB wire server: every test here runs once per stream, on the same fixtures.

Exactly once, gap-free numbering from the stream's own counter, no number taken for nothing, invalid
records set aside with the names of their faulty fields, and faults (WriteConflicts, killed runs) that
leave nothing lost, nothing doubled. All of it in the default shared sequence scope; the invariants marked
``each_scope`` (exactly once, gap-free, killed runs, range runs) also in deanery scope.
"""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import EXPORTED, INVALID_DATA, TO_EXPORT
from esr_export_dagster.domain.sequence import DEANERY_SCOPE, SHARED_SCOPE
from esr_export_dagster.domain.streams import APP_STREAM, NOTIFICATION_STREAM
from esr_export_dagster.storage.collections import COUNTER, EXPORT_BATCH
from esr_export_dagster.storage.ledger import unpack_record_ids

from . import kill_points
from .conftest import each_scope, each_stream, failure_message
from .delivery_invariants import FolderDrop, assert_every_file_delivered_once
from .invariants import file_placements, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
NEXT_DATE = RUN_DATE + dt.timedelta(days=1)


@each_stream
@each_scope
def test_eligible_records_are_exported_once_into_a_numbered_file(harness):
    records = harness.add_due("EOE", RUN_DATE, count=5)

    summary = harness.run_ok(RUN_DATE, "EOE")

    name = harness.file_name("EOE", RUN_DATE, 1)
    assert name == f"DE_EOE_{harness.stream.file_type}_20210731_00000001.DAT"
    assert summary["files_written_by_this_run"] == [name]
    assert summary["exported_by_this_run"] == 5
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in records)
    for document in harness.records.find():
        assert document["status"] == EXPORTED
        assert document["exportedFileName"] == name
        assert isinstance(document["exportedAt"], dt.datetime)
    harness.assert_invariants()
    assert_every_file_delivered_once(harness.database, harness.export_dir, harness.stream, FolderDrop(harness.drop_dir))


@each_stream
def test_the_file_asset_materialized_alone_exports_what_the_whole_job_would(harness):
    """The README's **Materialize selected…** on the file asset: its selection was never materialized, and
    the day's file still carries every eligible record, once."""
    records = harness.add_due("WES", RUN_DATE, count=3)
    harness.add_not_yet_due("WES", RUN_DATE)

    result = harness.run(RUN_DATE, "WES", assets=[harness.file_asset_key])

    assert result.success, failure_message(result)
    assert not result.asset_materializations_for_node(harness.stream.selection_asset_name)
    name = harness.file_name("WES", RUN_DATE, 1)
    assert harness.summary_of(result)["files_written_by_this_run"] == [name]
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in records)
    harness.assert_invariants()


@each_stream
def test_a_legacy_counter_continues_its_numbering(harness):
    harness.database[COUNTER].insert_one({"_id": harness.counter_id("MER"), "seq": 2765})
    harness.add_due("MER", RUN_DATE, count=2)

    summary = harness.run_ok(RUN_DATE, "MER")

    assert summary["files_written_by_this_run"] == [harness.file_name("MER", RUN_DATE, 2766)]
    assert harness.counter("MER").seq == 2766


@each_stream
def test_nothing_eligible_writes_no_file_and_takes_no_number(harness):
    harness.database[COUNTER].insert_one({"_id": harness.counter_id("WES"), "seq": 41})
    harness.add_not_yet_due("WES", RUN_DATE)

    result = harness.run(RUN_DATE, "WES")

    assert result.success
    assert files_on_disk(harness.export_dir, file_type=harness.stream.file_type) == {}
    assert harness.counter("WES").seq == 41
    (materialization,) = [
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == harness.file_asset_key
    ]
    assert "No eligible records" in materialization.metadata["outcome"].value


@each_stream
def test_materializing_a_partition_again_exports_nothing_twice(harness):
    harness.add_due("LDN", RUN_DATE, count=3)
    harness.run_ok(RUN_DATE, "LDN")

    again = harness.run_ok(RUN_DATE, "LDN")

    assert again["exported_by_this_run"] == 0
    assert again["files_written_by_this_run"] == []
    assert [f["name"] for f in again["files_for_partition"]] == [harness.file_name("LDN", RUN_DATE, 1)]
    assert len(files_on_disk(harness.export_dir, file_type=harness.stream.file_type)) == 1
    harness.assert_invariants()
    assert_every_file_delivered_once(harness.database, harness.export_dir, harness.stream, FolderDrop(harness.drop_dir))


@each_stream
@each_scope
def test_records_arriving_after_a_run_go_out_in_the_next_file(harness):
    harness.add_due("OXF", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "OXF")
    late = harness.add_due("OXF", RUN_DATE)

    summary = harness.run_ok(RUN_DATE, "OXF")

    second = harness.file_name("OXF", RUN_DATE, 2)
    assert summary["files_written_by_this_run"] == [second]
    assert file_placements(harness.export_dir / second) == [harness.reference(late[0])]
    harness.assert_invariants()
    assert_every_file_delivered_once(harness.database, harness.export_dir, harness.stream, FolderDrop(harness.drop_dir))


@each_stream
def test_a_record_missing_mandatory_fields_becomes_invalid_and_the_rest_goes_out(harness):
    good = harness.add_due("NWN", RUN_DATE, count=3)
    (broken,) = harness.add_due("NWN", RUN_DATE)
    fields = harness.break_record(broken)

    summary = harness.run_ok(RUN_DATE, "NWN")

    document = harness.records.find_one({"_id": broken["_id"]})
    assert document["status"] == INVALID_DATA
    assert document["generationError"] == (
        f"Missing or invalid mandatory fields for the ESR {harness.stream.file_type} file: {', '.join(fields)}"
    )
    assert "exportedFileName" not in document
    assert summary["invalid_marked_this_run"] == 1
    (name,) = summary["files_written_by_this_run"]
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in good)


@each_stream
def test_records_without_a_reference_become_invalid_and_upstream_can_still_write_more(harness):
    good = harness.add_due("SEV", RUN_DATE, count=2)
    unreferenced = harness.add_due("SEV", RUN_DATE, count=2)
    harness.records.update_many(
        {"_id": {"$in": [r["_id"] for r in unreferenced]}}, {"$unset": {harness.stream.reference_field: ""}}
    )

    summary = harness.run_ok(RUN_DATE, "SEV")

    assert summary["invalid_marked_this_run"] == 2
    for record in unreferenced:
        document = harness.records.find_one({"_id": record["_id"]})
        assert document["status"] == INVALID_DATA
        assert harness.stream.reference_field in document["generationError"]
    (name,) = summary["files_written_by_this_run"]
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in good)
    # The export puts no unique index on upstream's collection: TIS can still write records without a
    # reference, or a second record of one reference, which the export then sets aside by itself.
    harness.records.insert_many([{"deanery": "SEV", "status": TO_EXPORT} for _ in range(2)])
    harness.records.insert_one({harness.stream.reference_field: harness.reference(good[0])})


@each_stream
@each_scope
def test_a_month_run_as_one_range_equals_running_each_day_in_order(harness):
    days = [RUN_DATE + dt.timedelta(days=n) for n in range(0, 31, 3)]
    for day in days:
        harness.add_due("KSS", day, count=2)

    result = harness.run_range(days[0], days[-1], "KSS", "KSS")

    assert result.success
    files = files_on_disk(harness.export_dir, file_type=harness.stream.file_type)
    # One file per day that had records, numbered in date order, each holding exactly that day's records.
    assert list(files) == [harness.file_name("KSS", day, n) for n, day in enumerate(days, start=1)]
    assert harness.records.count_documents({"status": TO_EXPORT}) == 0
    harness.assert_invariants()
    assert_every_file_delivered_once(harness.database, harness.export_dir, harness.stream, FolderDrop(harness.drop_dir))


@each_stream
def test_write_conflicts_on_every_counter_operation_are_retried(harness, fault_proxy):
    records = harness.add_due("EOE", RUN_DATE, count=4)
    conflicts = fault_proxy.add(Rule(kill_points.counter_write, "write_conflict", times=2, per_shape=True))

    result = harness.run(RUN_DATE, "EOE", uri=fault_proxy.uri)

    assert result.success
    # open, number and close each failed twice before going through
    assert conflicts.applied == 6
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 6
    assert harness.records.count_documents({"status": EXPORTED}) == len(records)
    assert list(files_on_disk(harness.export_dir, file_type=harness.stream.file_type)) == [
        harness.file_name("EOE", RUN_DATE, 1)
    ]
    harness.assert_invariants()
    assert_every_file_delivered_once(harness.database, harness.export_dir, harness.stream, FolderDrop(harness.drop_dir))


KILL_POINTS = {
    "before opening the batch": kill_points.opens_batch,
    "before numbering": kill_points.numbers_batch,
    "before the file ledger entry": kill_points.starts_file,
    "before claiming the file's records": kill_points.claims_records,
    "after claiming, before marking": kill_points.marks_exported,
    "after marking, before the file": kill_points.records_marked_in_ledger,
    "after the file, before the ledger": kill_points.completes_file,
    "before closing the batch": kill_points.closes_batch,
}


# Both streams in shared scope, APP in deanery scope: a killed run costs a process start, and the scopes differ
# only in where the deanery's batch and numbers are kept, which the APP stream covers.
@pytest.mark.parametrize(
    ("harness", "sequence_scope"),
    [(APP_STREAM, SHARED_SCOPE), (NOTIFICATION_STREAM, SHARED_SCOPE), (APP_STREAM, DEANERY_SCOPE)],
    indirect=True,
    ids=["APP-shared", "DNC-shared", "APP-deanery"],
)
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_at_any_point_is_finished_by_the_next_run(harness, fault_proxy, point):
    first = harness.add_due("SEV", RUN_DATE, count=6)
    held = fault_proxy.add(Rule(KILL_POINTS[point], "hold"))

    killed = harness.start_subprocess_run(RUN_DATE, "SEV", uri=fault_proxy.uri)
    kill_points.wait_until_reached(held, killed)
    killed.kill()
    killed.wait()
    fault_proxy.clear()

    open_batch = harness.counter("SEV").open_batch
    batch = open_batch and harness.database[EXPORT_BATCH].find_one({"_id": open_batch["id"]})
    later = harness.add_due("SEV", NEXT_DATE, count=3)
    summary = harness.run_ok(NEXT_DATE, "SEV")

    files = files_on_disk(harness.export_dir, file_type=harness.stream.file_type)
    if not batch:  # killed before anything was frozen: the next run simply exports everything
        assert list(files) == [harness.file_name("SEV", NEXT_DATE, 1)]
    else:
        interrupted, following = harness.file_name("SEV", RUN_DATE, 1), harness.file_name("SEV", NEXT_DATE, 2)
        assert list(files) == [interrupted, following]
        planned_ids = set(unpack_record_ids(batch["files"][0]["recordIds"]))
        planned = {harness.reference(r) for r in first if r["_id"] in planned_ids}
        assert set(file_placements(files[interrupted])) == planned == {harness.reference(r) for r in first}
        assert set(file_placements(files[following])) == {harness.reference(r) for r in later}
        assert summary["files_written_by_this_run"] == [following]
    assert harness.records.count_documents({"status": TO_EXPORT}) == 0
    harness.assert_invariants()


def test_a_killed_runs_shared_numbers_stay_its_own_while_other_deaneries_number_on(harness, fault_proxy):
    interrupted_records = harness.add_due("SEV", RUN_DATE, count=3)
    held = fault_proxy.add(Rule(kill_points.records_marked_in_ledger, "hold"))
    killed = harness.start_subprocess_run(RUN_DATE, "SEV", uri=fault_proxy.uri)
    assert held.reached.wait(120), killed.communicate()[1][-2000:]
    killed.kill()
    killed.wait()
    fault_proxy.clear()
    # The number and the batch that owns it were recorded together, on the shared counter.
    assert harness.counter("SEV").open_batch["firstSeq"] == 1
    harness.add_due("EOE", RUN_DATE, count=2)

    other_deanery = harness.run_ok(RUN_DATE, "EOE")
    later = harness.add_due("SEV", NEXT_DATE)
    next_run = harness.run_ok(NEXT_DATE, "SEV")

    interrupted = harness.file_name("SEV", RUN_DATE, 1)
    assert other_deanery["files_written_by_this_run"] == [harness.file_name("EOE", RUN_DATE, 2)]
    assert next_run["files_written_by_this_run"] == [harness.file_name("SEV", NEXT_DATE, 3)]
    files = files_on_disk(harness.export_dir)
    assert sorted(files) == sorted(
        [interrupted, *other_deanery["files_written_by_this_run"], *next_run["files_written_by_this_run"]]
    )
    assert sorted(file_placements(files[interrupted])) == sorted(harness.reference(r) for r in interrupted_records)
    assert file_placements(files[harness.file_name("SEV", NEXT_DATE, 3)]) == [harness.reference(later[0])]
    harness.assert_invariants()
