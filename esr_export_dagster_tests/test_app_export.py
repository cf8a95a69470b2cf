"""The daily APP export end to end, through the real Dagster job, against a real MongoDB wire server."""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import DELETED_BEFORE_EXPORT, EXPORTED, INVALID_DATA
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER

from .invariants import assert_export_invariants, file_placements, files_on_disk

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)


def test_eligible_records_are_exported_once_into_a_numbered_file(harness):
    records = harness.add("EOE", RUN_DATE + dt.timedelta(days=4), count=5)

    summary = harness.run_ok(RUN_DATE, "EOE")

    name = "DE_EOE_APP_20210731_00000001.DAT"
    assert summary["files_written_by_this_run"] == [name]
    assert summary["exported_by_this_run"] == 5
    assert sorted(file_placements(harness.export_dir / name)) == sorted(r["placementId"] for r in records)
    for document in harness.database[APP_RECORDS].find():
        assert document["status"] == EXPORTED
        assert document["exportedFileName"] == name
        assert isinstance(document["exportedAt"], dt.datetime)
    assert_export_invariants(harness.database, harness.export_dir)


def test_a_legacy_counter_continues_its_numbering(harness):
    harness.database[COUNTER].insert_one({"_id": "APP_MER", "seq": 2765})
    harness.add("MER", RUN_DATE + dt.timedelta(days=10), count=2)

    summary = harness.run_ok(RUN_DATE, "MER")

    assert summary["files_written_by_this_run"] == ["DE_MER_APP_20210731_00002766.DAT"]
    assert harness.database[COUNTER].find_one({"_id": "APP_MER"})["seq"] == 2766


def test_nothing_eligible_writes_no_file_and_takes_no_number(harness):
    harness.database[COUNTER].insert_one({"_id": "APP_WES", "seq": 41})
    harness.add("WES", RUN_DATE + dt.timedelta(weeks=14))  # not yet in the window

    result = harness.run(RUN_DATE, "WES")

    assert result.success
    assert files_on_disk(harness.export_dir) == {}
    assert harness.database[COUNTER].find_one({"_id": "APP_WES"})["seq"] == 41
    materialization = result.asset_materializations_for_node("app_export_file.write_app_export_files")[0]
    assert "No eligible records" in materialization.metadata["outcome"].value


def test_materializing_a_partition_again_exports_nothing_twice(harness):
    harness.add("LDN", RUN_DATE + dt.timedelta(days=3), count=3)
    harness.run_ok(RUN_DATE, "LDN")

    again = harness.run_ok(RUN_DATE, "LDN")

    assert again["exported_by_this_run"] == 0
    assert again["files_written_by_this_run"] == []
    assert [f["name"] for f in again["files_for_partition"]] == ["DE_LDN_APP_20210731_00000001.DAT"]
    assert len(files_on_disk(harness.export_dir)) == 1
    assert_export_invariants(harness.database, harness.export_dir)


def test_records_arriving_after_a_run_go_out_in_the_next_file(harness):
    harness.add("OXF", RUN_DATE + dt.timedelta(days=5), count=2)
    harness.run_ok(RUN_DATE, "OXF")
    late = harness.add("OXF", RUN_DATE + dt.timedelta(days=5))

    summary = harness.run_ok(RUN_DATE, "OXF")

    assert summary["files_written_by_this_run"] == ["DE_OXF_APP_20210731_00000002.DAT"]
    assert file_placements(harness.export_dir / "DE_OXF_APP_20210731_00000002.DAT") == [late[0]["placementId"]]
    assert_export_invariants(harness.database, harness.export_dir)


def test_a_record_missing_mandatory_fields_becomes_invalid_and_the_rest_goes_out(harness):
    good = harness.add("NWN", RUN_DATE + dt.timedelta(days=6), count=3)
    (broken,) = harness.add("NWN", RUN_DATE + dt.timedelta(days=6), positionNumber=None)
    harness.database[APP_RECORDS].update_one({"_id": broken["_id"]}, {"$unset": {"applicant.dob": ""}})

    summary = harness.run_ok(RUN_DATE, "NWN")

    document = harness.database[APP_RECORDS].find_one({"_id": broken["_id"]})
    assert document["status"] == INVALID_DATA
    assert document["generationError"] == (
        "Missing or invalid mandatory fields for the ESR APP file: applicant.dob, positionNumber"
    )
    assert "exportedFileName" not in document
    assert summary["invalid_marked_this_run"] == 1
    (name,) = summary["files_written_by_this_run"]
    assert sorted(file_placements(harness.export_dir / name)) == sorted(r["placementId"] for r in good)


def test_records_that_are_not_eligible_are_never_changed(harness):
    untouched = [
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=1)),  # inside 2 days: too late for this window
        *harness.add("EMD", RUN_DATE + dt.timedelta(weeks=13)),  # 13 weeks: the exclusive upper bound
        *harness.add("EMD", RUN_DATE - dt.timedelta(days=3)),  # already started
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=9), status=EXPORTED, exportedFileName="DE_EMD_APP_20210701_00000001.DAT"),
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=9), status=DELETED_BEFORE_EXPORT),
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=9), status=INVALID_DATA, generationError="upstream"),
        *harness.add("EOE", RUN_DATE + dt.timedelta(days=9)),  # another deanery
    ]
    eligible = harness.add("EMD", RUN_DATE + dt.timedelta(days=2)) + harness.add("EMD", RUN_DATE + dt.timedelta(weeks=13, days=-1))
    before = {doc["_id"]: doc for doc in harness.database[APP_RECORDS].find({"_id": {"$in": [r["_id"] for r in untouched]}})}

    summary = harness.run_ok(RUN_DATE, "EMD")

    after = {doc["_id"]: doc for doc in harness.database[APP_RECORDS].find({"_id": {"$in": list(before)}})}
    assert after == before
    assert summary["exported_by_this_run"] == len(eligible)


def test_a_crowded_post_is_split_into_files_of_at_most_forty(harness):
    post = "LDN/RJ122/022/F1/001"
    crowded = harness.add("LDN", RUN_DATE + dt.timedelta(days=30), count=85, post_number=post)
    others = harness.add("LDN", RUN_DATE + dt.timedelta(days=12), count=4)

    summary = harness.run_ok(RUN_DATE, "LDN")

    names = summary["files_written_by_this_run"]
    assert names == [f"DE_LDN_APP_20210731_0000000{n}.DAT" for n in (1, 2, 3)]
    by_file = {name: file_placements(harness.export_dir / name) for name in names}
    crowded_ids = {r["placementId"] for r in crowded}
    assert [len(crowded_ids.intersection(by_file[name])) for name in names] == [40, 40, 5]
    assert {r["placementId"] for r in others} <= set(by_file[names[0]])
    assert summary["largest_post_count"] == 40
    assert_export_invariants(harness.database, harness.export_dir)


def test_the_materialization_describes_the_export_without_personal_data(harness):
    harness.add("KSS", RUN_DATE + dt.timedelta(days=8), count=2)

    result = harness.run(RUN_DATE, "KSS")

    (materialization,) = result.asset_materializations_for_node("app_export_file.write_app_export_files")
    metadata = materialization.metadata
    assert metadata["exported_records"].value == 2
    assert metadata["sequence_numbers"].value == "1"
    assert metadata["eligibility_window"].value == "D + 2 days <= startDate < D + 13 weeks"
    assert metadata["files"].value[0]["name"] == "DE_KSS_APP_20210731_00000001.DAT"
    (selection,) = result.asset_materializations_for_node("app_record_selection")
    assert selection.metadata["eligible_records"].value == 2
