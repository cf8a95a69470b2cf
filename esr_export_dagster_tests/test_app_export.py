"""What only the APP export does, end to end, through the real Dagster job, against a real MongoDB wire server:
ESR's start-date window and the 40-per-post split. The invariants it shares with the DNC export are in
test_export_invariants.py."""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import DELETED_BEFORE_EXPORT, EXPORTED, INVALID_DATA
from esr_export_dagster.storage.collections import APP_RECORDS

from .invariants import assert_export_invariants, file_placements

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)


def test_records_that_are_not_eligible_are_never_changed(harness):
    untouched = [
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=1)),  # inside 2 days: too late for this window
        *harness.add("EMD", RUN_DATE + dt.timedelta(weeks=13)),  # 13 weeks: the exclusive upper bound
        *harness.add("EMD", RUN_DATE - dt.timedelta(days=3)),  # already started
        *harness.add(
            "EMD", RUN_DATE + dt.timedelta(days=9), status=EXPORTED, exportedFileName="DE_EMD_APP_20210701_00000001.DAT"
        ),
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=9), status=DELETED_BEFORE_EXPORT),
        *harness.add("EMD", RUN_DATE + dt.timedelta(days=9), status=INVALID_DATA, generationError="upstream"),
        *harness.add("EOE", RUN_DATE + dt.timedelta(days=9)),  # another deanery
    ]
    eligible = harness.add("EMD", RUN_DATE + dt.timedelta(days=2)) + harness.add(
        "EMD", RUN_DATE + dt.timedelta(weeks=13, days=-1)
    )
    before = {
        doc["_id"]: doc for doc in harness.database[APP_RECORDS].find({"_id": {"$in": [r["_id"] for r in untouched]}})
    }

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

    (materialization,) = result.asset_materializations_for_node("app_export_file.deliver_app_export_files")
    metadata = materialization.metadata
    assert metadata["exported_records"].value == 2
    assert metadata["sequence_numbers"].value == "1"
    assert metadata["eligibility_window"].value == "D + 2 days <= startDate < D + 13 weeks"
    assert metadata["files"].records[0].data["file"] == "DE_KSS_APP_20210731_00000001.DAT"
    (selection,) = result.asset_materializations_for_node("app_record_selection")
    assert selection.metadata["eligible_records"].value == 2
