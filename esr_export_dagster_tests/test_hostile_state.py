"""Hostile or legacy state around the export: lost and corrupt counters, stray files, damaged batches,
duplicate references, records that change under a run, dates that are not dates.

Every case runs the real job over the real wire server. The export either refuses with its own message,
naming the document or file and changing nothing it should not, or it goes on and the invariants hold.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from bson import ObjectId

from esr_export_dagster.domain.records import DELETED_BEFORE_EXPORT, EXPORTED, INVALID_DATA, TO_EXPORT
from esr_export_dagster.domain.sensor_tick import StaleSensorCursor
from esr_export_dagster.domain.sequence import SHARED_SCOPE
from esr_export_dagster.domain.stale_records import UNDATED, UNDATED_NOTIFICATION
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.storage.collections import COUNTER, EXPORT_BATCH, EXPORT_FILE
from esr_export_dagster.storage.exporter import CLAIMED_BY

from . import kill_points
from .conftest import each_scope, each_stream, failure_message, wait_all
from .invariants import file_placements, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
NEXT_DATE = RUN_DATE + dt.timedelta(days=1)


def _statuses(harness, records) -> list[str]:
    return [harness.records.find_one({"_id": r["_id"]})["status"] for r in records]


def _counter(harness, deanery: str) -> dict | None:
    return harness.stored_counter(deanery)


def _refused(harness, run_date: dt.date, deanery: str, *expected: str) -> str:
    result = harness.run(run_date, deanery)
    assert not result.success, f"{deanery} {run_date} ran although it should have been refused"
    message = failure_message(result)
    for text in expected:
        assert text in message, message
    return message


# -- nothing is ever overwritten ---------------------------------------------------------------------


@each_stream
@each_scope
def test_a_stray_file_under_the_next_number_is_refused_before_any_number_is_taken(harness):
    counter_id = harness.counter_id("EOE")
    harness.store_counter("EOE", seq=4, version=0, openBatch=None)
    records = harness.add_due("EOE", RUN_DATE, count=3)
    name = harness.file_name("EOE", RUN_DATE, 5)
    harness.export_dir.mkdir(mode=0o700)
    stray = harness.export_dir / name
    stray.write_bytes(b"a file this export never wrote\n")

    _refused(harness, RUN_DATE, "EOE", f"counter {counter_id} has seq 4, but ESR_EXPORT_DIR holds {name} (number 5)")

    assert stray.read_bytes() == b"a file this export never wrote\n"
    assert _statuses(harness, records) == [TO_EXPORT] * 3
    assert _counter(harness, "EOE") == {"_id": counter_id, "seq": 4, "version": 0, "openBatch": None}
    stray.rename(harness.export_dir.parent / "moved-aside.DAT")
    harness.run_ok(RUN_DATE, "EOE")
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in records)
    harness.assert_invariants(first_sequence={"EOE": 5})


@each_stream
def test_a_file_that_takes_the_name_while_a_run_writes_is_never_overwritten_and_keeps_its_number(harness, fault_proxy):
    records = harness.add_due("EOE", RUN_DATE, count=3)
    name = harness.file_name("EOE", RUN_DATE, 1)
    held = fault_proxy.add(Rule(kill_points.starts_file, "hold"))
    run = harness.start_subprocess_run(RUN_DATE, "EOE", uri=fault_proxy.uri)
    kill_points.wait_until_reached(held, run)
    stray = harness.export_dir / name
    stray.write_bytes(b"dropped here by hand\n")
    fault_proxy.clear()
    out, err = run.communicate(timeout=180)
    assert run.returncode != 0, out

    assert stray.read_bytes() == b"dropped here by hand\n"
    assert _statuses(harness, records) == [TO_EXPORT] * 3
    for _ in range(2):  # the file keeps its number, however often it is refused
        _refused(
            harness, RUN_DATE, "EOE", f"{name} already exists in ESR_EXPORT_DIR, but this export has not written it"
        )
        assert _counter(harness, "EOE")["seq"] == 1
        assert _statuses(harness, records) == [TO_EXPORT] * 3
    stray.rename(harness.export_dir.parent / "moved-aside.DAT")
    harness.run_ok(NEXT_DATE, "EOE")
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in records)
    harness.assert_invariants()


@each_stream
@each_scope
def test_a_lost_counter_resumes_after_the_highest_number_the_file_ledger_proves(harness):
    harness.add_due("EOE", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "EOE")
    harness.database[COUNTER].delete_one({"_id": harness.counter_id("EOE")})
    later = harness.add_due("EOE", NEXT_DATE, count=2)

    summary = harness.run_ok(NEXT_DATE, "EOE")

    assert summary["files_written_by_this_run"] == [harness.file_name("EOE", NEXT_DATE, 2)]
    second = harness.export_dir / harness.file_name("EOE", NEXT_DATE, 2)
    assert sorted(file_placements(second)) == sorted(harness.reference(r) for r in later)
    harness.assert_invariants()


@each_stream
@each_scope
def test_a_lost_counter_with_files_the_ledger_does_not_know_is_refused_never_restarted_from_one(harness):
    harness.add_due("EOE", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "EOE")
    first = harness.export_dir / harness.file_name("EOE", RUN_DATE, 1)
    first_bytes = first.read_bytes()
    # The whole export database restored from a backup older than the first file.
    for collection in (COUNTER, EXPORT_FILE, EXPORT_BATCH):
        harness.database[collection].delete_many({})
    later = harness.add_due("EOE", NEXT_DATE, count=2)

    _refused(
        harness,
        NEXT_DATE,
        "EOE",
        f"counter {harness.counter_id('EOE')} is missing",
        f"ESR_EXPORT_DIR holds {first.name} (number 1)",
        "No number was taken and no record was changed",
    )

    assert first.read_bytes() == first_bytes
    assert _statuses(harness, later) == [TO_EXPORT] * 2
    assert _counter(harness, "EOE") is None
    assert list(files_on_disk(harness.export_dir, file_type=harness.stream.file_type)) == [first.name]
    # The README's remedy: set the counter to the last number ESR received. The ledger of file 1 is gone
    # with the backup, so the invariants are checked from the restored counter on.
    harness.store_counter("EOE", seq=1, version=0, openBatch=None)
    summary = harness.run_ok(NEXT_DATE, "EOE")
    assert summary["files_written_by_this_run"] == [harness.file_name("EOE", NEXT_DATE, 2)]
    assert sorted(file_placements(harness.export_dir / harness.file_name("EOE", NEXT_DATE, 2))) == sorted(
        harness.reference(r) for r in later
    )


@each_scope
def test_a_counter_set_back_below_the_file_ledger_is_refused_before_any_number_is_taken(harness):
    harness.add_due("EOE", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "EOE")
    first = harness.file_name("EOE", RUN_DATE, 1)
    # Delivered and archived elsewhere: only the ledger remembers number 1.
    (harness.export_dir / first).rename(harness.export_dir.parent / first)
    harness.database[COUNTER].update_one({"_id": harness.counter_id("EOE")}, {"$set": {"seq": 0}})
    later = harness.add_due("EOE", NEXT_DATE, count=2)

    _refused(
        harness,
        NEXT_DATE,
        "EOE",
        f"counter {harness.counter_id('EOE')} has seq 0, but the file ledger holds {first} (number 1)",
    )

    assert _statuses(harness, later) == [TO_EXPORT] * 2
    assert _counter(harness, "EOE")["seq"] == 0 and _counter(harness, "EOE")["openBatch"] is None
    assert not list(files_on_disk(harness.export_dir))


@each_scope
def test_the_export_directory_is_checked_over_the_counters_scope(harness):
    harness.store_counter("EOE", seq=4)
    records = harness.add_due("EOE", RUN_DATE)
    harness.export_dir.mkdir(mode=0o700)
    other_deanerys = harness.export_dir / harness.file_name("LDN", RUN_DATE, 5)
    other_deanerys.write_bytes(b"a file of another deanery\n")

    result = harness.run(RUN_DATE, "EOE")

    if harness.scope == SHARED_SCOPE:
        # LDN's number 5 came from the shared counter too: numbering on from 4 would repeat it.
        assert not result.success
        assert f"counter APP has seq 4, but ESR_EXPORT_DIR holds {other_deanerys.name} (number 5)" in (
            failure_message(result)
        )
        assert _statuses(harness, records) == [TO_EXPORT]
    else:
        assert result.success, failure_message(result)
        assert _statuses(harness, records) == [EXPORTED]


# -- state read from MongoDB is validated before it is trusted ---------------------------------------


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2765", "seq '2765' (text) is not a whole number"),
        (2765.5, "seq 2765.5 (a fraction) is not a whole number"),
        (None, "seq null is not a whole number"),
        (True, "seq True (true/false) is not a whole number"),
        (-1, "seq -1 (a whole number) is negative"),
        (100_000_000, "seq 100000000 (a whole number) is beyond ESR's 8-digit range"),
        ({"n": 1}, "seq {'n': 1} (dict) is not a whole number"),
    ],
    ids=["text", "fraction", "null", "boolean", "negative", "nine-digits", "document"],
)
def test_a_counter_that_is_not_a_file_number_fails_the_run_at_once_naming_it(harness, stored, shown):
    harness.store_counter("MER", seq=stored, version=0, openBatch=None)
    records = harness.add_due("MER", RUN_DATE, count=2)

    message = _refused(harness, RUN_DATE, "MER", f"counter {harness.counter_id('MER')}: {shown}", "No number was taken")

    assert "ValueError" not in message and "TypeError" not in message
    assert _counter(harness, "MER") == {
        "_id": harness.counter_id("MER"),
        "seq": stored,
        "version": 0,
        "openBatch": None,
    }
    assert _statuses(harness, records) == [TO_EXPORT] * 2
    assert not harness.export_dir.exists() or not list(harness.export_dir.glob("DE_*"))


def test_a_counter_without_seq_is_refused_naming_the_missing_field(harness):
    harness.store_counter("MER", version=3, openBatch=None)
    harness.add_due("MER", RUN_DATE)

    _refused(harness, RUN_DATE, "MER", f"counter {harness.counter_id('MER')}: seq is missing")

    assert _counter(harness, "MER") == {"_id": harness.counter_id("MER"), "version": 3, "openBatch": None}


def test_a_legacy_counter_stored_as_a_whole_double_numbers_on_from_it(harness):
    # What the mongo shell stores for `seq: 2765`.
    harness.store_counter("MER", seq=2765.0, version=0, openBatch=None)
    harness.add_due("MER", RUN_DATE)

    summary = harness.run_ok(RUN_DATE, "MER")

    assert summary["files_written_by_this_run"] == [harness.file_name("MER", RUN_DATE, 2766)]
    harness.assert_invariants(first_sequence={"MER": 2766})


def test_a_counter_at_the_end_of_esrs_range_takes_no_number_it_cannot_name(harness):
    harness.store_counter("MER", seq=99_999_999, version=0, openBatch=None)
    records = harness.add_due("MER", RUN_DATE)

    _refused(
        harness,
        RUN_DATE,
        "MER",
        f"counter {harness.counter_id('MER')} has seq 99999999",
        "8-digit limit",
        "No number was taken",
    )

    assert _counter(harness, "MER")["seq"] == 99_999_999
    assert _statuses(harness, records) == [TO_EXPORT]


def test_a_damaged_open_batch_stops_its_own_deanery_and_no_other(harness):
    harness.store_counter("EOE", seq=4, version=2, openBatch={"id": 17})
    stuck = harness.add_due("EOE", RUN_DATE)
    others = harness.add_due("LDN", RUN_DATE, count=2)

    _refused(
        harness,
        RUN_DATE,
        "EOE",
        "counter APP has an open batch that cannot be trusted: deaneries.EOE.openBatch.id is 17",
    )
    harness.run_ok(RUN_DATE, "LDN")

    assert _statuses(harness, stuck) == [TO_EXPORT]
    assert _statuses(harness, others) == [EXPORTED] * 2
    # LDN numbers on from the shared counter, past EOE's damaged batch.
    assert list(files_on_disk(harness.export_dir)) == [harness.file_name("LDN", RUN_DATE, 5)]


def test_an_open_batch_whose_plan_is_gone_is_released_when_it_took_no_number(harness):
    harness.store_counter(
        "EOE",
        seq=0,
        version=0,
        openBatch={"id": "lost-plan", "runId": "an-earlier-run", "state": "PLANNED", "fileCount": 1},
    )
    records = harness.add_due("EOE", RUN_DATE, count=2)

    summary = harness.run_ok(RUN_DATE, "EOE")

    assert summary["files_written_by_this_run"] == [harness.file_name("EOE", RUN_DATE, 1)]
    assert _statuses(harness, records) == [EXPORTED] * 2
    harness.assert_invariants()


def test_an_open_batch_whose_plan_is_gone_after_taking_numbers_is_refused_naming_them(harness):
    reference = {"id": "lost-plan", "runId": "an-earlier-run", "state": "NUMBERED", "fileCount": 2, "firstSeq": 8}
    harness.store_counter("EOE", seq=9, version=3, openBatch=reference)
    records = harness.add_due("EOE", RUN_DATE)

    _refused(
        harness,
        RUN_DATE,
        "EOE",
        "counter APP has open batch lost-plan, but exportBatch holds no document lost-plan",
        "It holds APP numbers 8..9",
        "restore exportBatch lost-plan from a backup",
    )

    assert _counter(harness, "EOE") == {"_id": "APP", "seq": 9, "version": 3, "openBatch": reference}
    assert _statuses(harness, records) == [TO_EXPORT]


# -- one deanery's data cannot stop another -----------------------------------------------------------


@each_stream
def test_duplicate_references_are_set_aside_by_reference_and_block_no_deanery(harness):
    good = harness.add_due("EOE", RUN_DATE, count=3)
    (waiting_again,) = harness.add_due("EOE", RUN_DATE)
    reference = harness.reference(waiting_again)
    # The legacy exporter's record of the same placement or notification, sent long ago.
    harness.records.insert_one(
        {"_id": ObjectId(), harness.stream.reference_field: reference, "deanery": "EOE", "status": EXPORTED}
    )
    twins = harness.add_due("EOE", RUN_DATE, count=2)
    harness.records.update_one(
        {"_id": twins[1]["_id"]}, {"$set": {harness.stream.reference_field: harness.reference(twins[0])}}
    )
    elsewhere = harness.add_due("MER", RUN_DATE, count=2)

    harness.run_ok(RUN_DATE, "MER")
    summary = harness.run_ok(RUN_DATE, "EOE")

    assert summary["invalid_marked_this_run"] == 3
    for record in [waiting_again, *twins]:
        document = harness.records.find_one({"_id": record["_id"]})
        assert document["status"] == INVALID_DATA
        assert (
            f"Duplicate {harness.stream.reference_field} {document[harness.stream.reference_field]}"
            in document["generationError"]
        )
    (name,) = summary["files_written_by_this_run"]
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in good)
    assert _statuses(harness, elsewhere) == [EXPORTED] * 2
    harness.assert_invariants()


# -- what is in a file is what is marked -------------------------------------------------------------


@each_stream
def test_records_withdrawn_moved_or_broken_while_a_run_writes_are_not_in_its_file(harness, fault_proxy):
    records = harness.add_due("SEV", RUN_DATE, count=6)
    withdrawn, moved, out_of_window, broken, *kept = records
    held = fault_proxy.add(Rule(kill_points.marks_exported, "hold"))

    run = harness.start_subprocess_run(RUN_DATE, "SEV", uri=fault_proxy.uri)
    kill_points.wait_until_reached(held, run)
    harness.records.update_one({"_id": withdrawn["_id"]}, {"$set": {"status": DELETED_BEFORE_EXPORT}})
    harness.records.update_one({"_id": moved["_id"]}, {"$set": {"deanery": "MER"}})
    later = dt.timedelta(weeks=20)
    anchor = harness.stream.anchor_field
    harness.records.update_one({"_id": out_of_window["_id"]}, {"$set": {anchor: out_of_window[anchor] + later}})
    fields = harness.break_record(broken)
    # The held command is dropped; the op's retry policy marks again, judging every record as it is now.
    fault_proxy.clear()
    (summary,) = wait_all([run])

    (name,) = summary["files_written_by_this_run"]
    assert sorted(file_placements(harness.export_dir / name)) == sorted(harness.reference(r) for r in kept)
    assert harness.database[EXPORT_FILE].find_one({"_id": name})["lineCount"] == len(kept)
    assert _statuses(harness, [withdrawn, moved, out_of_window]) == [DELETED_BEFORE_EXPORT, TO_EXPORT, TO_EXPORT]
    document = harness.records.find_one({"_id": broken["_id"]})
    assert document["status"] == INVALID_DATA and fields[0] in document["generationError"]
    assert "exportedFileName" not in document
    # The claims the run put on the file's records before marking are gone from those it did not mark.
    assert not [r["_id"] for r in harness.records.find({}) if CLAIMED_BY in r]
    harness.assert_invariants()


# -- records that no date can select -----------------------------------------------------------------


def _undated_values(stream) -> list:
    text = "2021-08-05" if stream is APP_STREAM else "2021-07-30T10:00:00"
    return [None, text, 20210805, {"date": text}]


@each_stream
def test_undated_records_are_announced_then_set_invalid_by_any_run_of_their_deanery(harness):
    good = harness.add_due("EOE", RUN_DATE, count=2)
    undated = harness.add_due("EOE", RUN_DATE, count=5)
    anchor = harness.stream.anchor_field
    harness.records.update_one({"_id": undated[0]["_id"]}, {"$unset": {anchor: ""}})
    for record, value in zip(undated[1:], _undated_values(harness.stream), strict=True):
        harness.records.update_one({"_id": record["_id"]}, {"$set": {anchor: value}})
    category = UNDATED if harness.stream is APP_STREAM else UNDATED_NOTIFICATION

    before = _sensor_findings(harness)
    assert f"EOE|{category}" in before and str(len(undated)) in before[f"EOE|{category}"]

    # Any date of the deanery finds them, not only the date they would have been due on.
    summary = harness.run_ok(RUN_DATE + dt.timedelta(days=9), "EOE")

    assert summary["invalid_marked_this_run"] == len(undated)
    for record in undated:
        document = harness.records.find_one({"_id": record["_id"]})
        assert document["status"] == INVALID_DATA and anchor in document["generationError"]
    assert f"EOE|{category}" not in _sensor_findings(harness)
    harness.run_ok(RUN_DATE, "EOE")
    assert _statuses(harness, good) == [EXPORTED] * 2
    harness.assert_invariants()


def _sensor_findings(harness) -> dict[str, str]:
    """One tick of the real stale sensor: the count it announced, by finding key."""
    result = harness.tick_sensor()
    return {key: str(count) for key, (count, _) in StaleSensorCursor.parse(result.cursor).announced.items()}


def test_a_refused_file_leaves_no_temporary_file_and_the_directory_private(harness):
    harness.add_due("EOE", RUN_DATE)
    harness.export_dir.mkdir(mode=0o700)
    (harness.export_dir / harness.file_name("EOE", RUN_DATE, 1)).write_bytes(b"x")

    _refused(harness, RUN_DATE, "EOE", f"counter {harness.counter_id('EOE')} is missing, but ESR_EXPORT_DIR holds")

    assert os.stat(harness.export_dir).st_mode & 0o777 == 0o700
    assert not list(harness.export_dir.glob(".partial-*"))


def test_posts_that_differ_only_by_a_line_break_count_as_the_one_post_esr_sees(harness):
    start = RUN_DATE + dt.timedelta(weeks=13, days=-1)
    plain = harness.add("EOE", start, count=21, post_number="EOE/RGT00 001/FY1/001")
    broken = harness.add("EOE", start, count=20, post_number="EOE/RGT00\n001/FY1/001")

    summary = harness.run_ok(RUN_DATE, "EOE")

    # 41 applicants for what ESR reads as one post: more than 40 in one file would quarantine it.
    files = summary["files_written_by_this_run"]
    assert len(files) == 2
    assert sorted(p for name in files for p in file_placements(harness.export_dir / name)) == sorted(
        r["placementId"] for r in plain + broken
    )
    harness.assert_invariants()
