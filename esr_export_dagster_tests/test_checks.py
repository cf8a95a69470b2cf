"""The asset checks on app_export_file, passing on a sound export and failing on each kind of damage."""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.storage import collections
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER, EXPORT_FILE

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)


def checks_of(result) -> dict[str, bool]:
    return {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}


def test_a_sound_export_passes_every_check(harness):
    harness.add("EOE", RUN_DATE + dt.timedelta(days=30), count=85, post_number="EOE/RGT00/021/FY1/010")

    result = harness.run(RUN_DATE, "EOE")

    assert result.success
    assert checks_of(result) == {
        "no_record_past_start": True,
        "file_numbers_contiguous": True,
        "files_match_records": True,
        "invalid_records_not_growing": True,
        "every_file_delivered": True,
        "esr_confirmed_every_file": True,
    }


def test_a_record_left_past_its_start_date_fails_the_check(harness):
    harness.now = dt.datetime.now(dt.UTC)
    today = harness.now.date()
    (record,) = harness.add("EOE", today - dt.timedelta(days=1))

    result = harness.run(RUN_DATE, "EOE")

    assert checks_of(result)["no_record_past_start"] is False
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_record_past_start"]
    assert evaluation.metadata["records_past_start"].value == 1
    assert evaluation.metadata["placement_ids"].value == str(record["placementId"])
    assert "What to do: Tell the trust to hire by hand" in evaluation.description


def test_a_gap_in_the_file_numbers_fails_the_check(harness):
    for day in range(3):
        harness.add("LDN", RUN_DATE + dt.timedelta(days=5 + day))
        harness.run_ok(RUN_DATE + dt.timedelta(days=day), "LDN")
    harness.database[EXPORT_FILE].delete_one({"deanery": "LDN", "seq": 2})

    result = harness.run(RUN_DATE, "LDN")

    assert checks_of(result)["file_numbers_contiguous"] is False
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "file_numbers_contiguous"]
    assert evaluation.metadata["by_deanery"].value["LDN"]["gaps"] == [2]
    assert evaluation.metadata["gaps"].value == "LDN: 2"


def test_a_file_that_disagrees_with_the_records_fails_the_check(harness):
    records = harness.add("MER", RUN_DATE + dt.timedelta(days=5), count=3)
    harness.run_ok(RUN_DATE, "MER")
    harness.database[APP_RECORDS].update_one({"_id": records[0]["_id"]}, {"$set": {"exportedFileName": "elsewhere"}})

    result = harness.run(RUN_DATE, "MER")

    assert checks_of(result)["files_match_records"] is False


def test_a_record_outside_the_file_marked_with_its_name_fails_the_check(harness):
    harness.add("MER", RUN_DATE + dt.timedelta(days=5), count=2)
    (stray,) = harness.add("MER", RUN_DATE + dt.timedelta(weeks=20))
    harness.run_ok(RUN_DATE, "MER")
    name = harness.file_name("MER", RUN_DATE, 1)
    harness.database[APP_RECORDS].update_one(
        {"_id": stray["_id"]}, {"$set": {"status": EXPORTED, "exportedFileName": name}}
    )

    result = harness.run(RUN_DATE, "MER")

    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "files_match_records"]
    assert evaluation.passed is False
    assert evaluation.metadata["mismatched_files"].value == name


def test_a_file_missing_from_the_export_directory_fails_the_check(harness):
    harness.add("MER", RUN_DATE + dt.timedelta(days=5), count=2)
    harness.run_ok(RUN_DATE, "MER")
    (harness.export_dir / harness.file_name("MER", RUN_DATE, 1)).unlink()

    result = harness.run(RUN_DATE, "MER")

    assert checks_of(result)["files_match_records"] is False


def test_a_backfill_checks_every_file_of_its_range_and_fails_on_the_one_that_disagrees(harness):
    last = RUN_DATE + dt.timedelta(days=2)
    for day in range(3):
        for deanery in ("EOE", "LDN"):
            harness.add_due(deanery, RUN_DATE + dt.timedelta(days=day), count=2)
    assert harness.run_range(RUN_DATE, last, "EOE", "LDN").success
    # Whatever its number in the shared sequence, the middle day's LDN file is the one damaged.
    (middle,) = (p.name for p in harness.export_dir.glob(f"DE_LDN_*_{RUN_DATE + dt.timedelta(days=1):%Y%m%d}_*.DAT"))
    damaged = harness.database[APP_RECORDS].find_one({"exportedFileName": middle})
    harness.database[APP_RECORDS].update_one({"_id": damaged["_id"]}, {"$set": {"exportedFileName": "elsewhere"}})

    result = harness.run_range(RUN_DATE, last, "EOE", "LDN")

    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "files_match_records"]
    assert evaluation.passed is False
    assert evaluation.metadata["files_checked"].value == 6
    assert evaluation.metadata["mismatched_files"].value == middle


def test_a_counter_that_is_not_a_file_number_fails_the_numbering_report_naming_it(database):
    from esr_export_dagster.storage.ledger import ExportLedger

    database[EXPORT_FILE].insert_one(
        {"_id": "DE_LDN_APP_20210731_00000001.DAT", "fileType": "APP", "deanery": "LDN", "seq": 1}
    )
    database[COUNTER].insert_one({"_id": "APP_LDN", "seq": "one"})

    report = ExportLedger(database, "APP", "deanery").sequence_report("LDN")

    assert not report.passed
    assert "counter APP_LDN" in report.shown()["problem"]


def test_the_checks_keep_their_state_only_in_collections_the_storage_layer_declares(harness):
    harness.add("WES", RUN_DATE + dt.timedelta(days=5), count=2)
    harness.run_ok(RUN_DATE, "WES")
    harness.run_ok(RUN_DATE + dt.timedelta(days=1), "WES")

    declared = {getattr(collections, name) for name in collections.__all__ if name.isupper()}
    assert set(harness.database.list_collection_names()) <= declared
    assert harness.database[collections.CHECK_STATE].find_one({"_id": "APP_WES_invalid"})["count"] == 0


def test_a_growing_number_of_invalid_records_warns(harness):
    harness.add("WES", RUN_DATE + dt.timedelta(days=5), count=2)
    harness.run_ok(RUN_DATE, "WES")
    (broken,) = harness.add("WES", RUN_DATE + dt.timedelta(days=6))
    harness.database[APP_RECORDS].update_one({"_id": broken["_id"]}, {"$unset": {"applicant.lastName": ""}})

    result = harness.run(RUN_DATE, "WES")

    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "invalid_records_not_growing"]
    assert evaluation.passed is False
    assert evaluation.severity.value == "WARN"
    assert evaluation.metadata["invalid_records"].value == 1


def test_every_check_name_fits_the_ui_and_every_description_says_what_to_do():
    from esr_export_dagster.checks import build_export_checks, no_notifications_left_behind, no_record_past_start
    from esr_export_dagster.domain.streams import STREAMS

    stream_checks = [check for s in STREAMS for check in build_export_checks(s, s.file_asset_name)]
    for checks in (no_record_past_start, no_notifications_left_behind, *stream_checks):
        for spec in checks.check_specs:
            assert len(spec.name) <= 30, spec.name
            assert "What to do" in spec.description, spec.name
