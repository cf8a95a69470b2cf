"""The asset checks on app_export_file, passing on a sound export and failing on each kind of damage."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import AssetCheckKey, AssetSelection, DagsterEventType, Definitions, define_asset_job

from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.partitions import export_partition_key
from esr_export_dagster.storage import collections
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER, EXPORT_FILE

from .conftest import each_stream

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


def started_steps(result) -> list[str]:
    return [event.step_key for event in result.all_events if event.is_step_start]


def run_checks_alone(harness, selection: AssetSelection, run_date: dt.date, deanery: str):
    """Only the selected checks of one partition, as the UI's **Execute** on a check's page runs them."""
    job = define_asset_job("checks_alone", selection=selection)
    defs = Definitions.merge(harness.definitions(run_date=run_date), Definitions(jobs=[job]))
    # By the run's partition tag, as a launched run carries it: execute_in_process's partition_key looks for
    # the partitions of a selected asset, and this run selects none.
    return defs.resolve_job_def(job.name).execute_in_process(
        tags={"dagster/partition": str(export_partition_key(run_date, deanery))},
        instance=harness.instance,
        raise_on_error=False,
    )


@each_stream
def test_one_step_evaluates_every_check_of_the_partition_each_under_its_own_name(harness):
    harness.add_due("EOE", RUN_DATE, count=3)

    result = harness.run(RUN_DATE, "EOE")

    assert result.success
    checks_step = f"{harness.stream.file_asset_name}_checks"
    evaluations = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    own_check = "no_record_past_start" if harness.stream is APP_STREAM else "no_notifications_left_behind"
    assert sorted(e.asset_check_evaluation_data.check_name for e in evaluations) == sorted(
        [
            own_check,
            "file_numbers_contiguous",
            "files_match_records",
            "invalid_records_not_growing",
            "every_file_delivered",
            "esr_confirmed_every_file",
        ]
    )
    assert {e.step_key for e in evaluations} == {checks_step}
    assert all(e.asset_check_evaluation_data.asset_key == harness.file_asset_key for e in evaluations)
    # The selection asset, the file asset's four ops and one step for the six checks (each had its own).
    assert len(started_steps(result)) == 6 and started_steps(result).count(checks_step) == 1


def test_a_check_selected_alone_runs_alone_and_fails_with_its_own_result(harness):
    harness.add("MER", RUN_DATE + dt.timedelta(days=5), count=3)
    harness.run_ok(RUN_DATE, "MER")
    name = harness.file_name("MER", RUN_DATE, 1)
    harness.database[APP_RECORDS].update_one({"exportedFileName": name}, {"$set": {"exportedFileName": "elsewhere"}})

    one = AssetCheckKey(harness.file_asset_key, "files_match_records")
    result = run_checks_alone(harness, AssetSelection.checks(one), RUN_DATE, "MER")

    assert result.success
    assert started_steps(result) == ["app_export_file_checks"]
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed, evaluation.severity.value) == (
        "files_match_records",
        False,
        "ERROR",
    )
    assert evaluation.metadata["mismatched_files"].value == name
    assert "What to do: Do not send the listed files again by hand" in evaluation.description


def test_a_check_that_cannot_be_evaluated_fails_the_step_naming_it_and_the_others_still_report(harness):
    harness.add("MER", RUN_DATE + dt.timedelta(days=5), count=2)
    harness.run_ok(RUN_DATE, "MER")
    damaged = harness.export_dir / harness.file_name("MER", RUN_DATE, 1)
    damaged.chmod(0o600)
    damaged.write_bytes(b"APP,not-a-placement-id\n")

    result = run_checks_alone(harness, AssetSelection.checks_for_assets(harness.file_asset_key), RUN_DATE, "MER")

    assert not result.success
    assert checks_of(result) == {
        "no_record_past_start": True,
        "file_numbers_contiguous": True,
        "invalid_records_not_growing": True,
        "every_file_delivered": True,
        "esr_confirmed_every_file": True,
    }
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "app_export_file_checks"
    assert failure.step_failure_data.user_failure_data.description == (
        "Could not evaluate check(s): files_match_records (ValueError)"
    )


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
    from esr_export_dagster.checks import export_checks, left_behind_check, past_start_check
    from esr_export_dagster.domain.streams import STREAMS

    stream_checks = [check for s in STREAMS for check in export_checks(s)]
    for check in (past_start_check(), left_behind_check(), *stream_checks):
        spec = check.spec
        assert len(spec.name) <= 30, spec.name
        assert "What to do" in spec.description, spec.name
