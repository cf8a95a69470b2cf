"""Backfills in one run: the same files, numbers and record states as running each day on time."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from dagster import AssetKey, execute_job, instance_for_test, reconstructable
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.partitions import export_partition_key, export_partitions
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER

from .conftest import QUIET_LOGS, ExportHarness
from .invariants import assert_export_invariants, files_on_disk
from .multiprocess_job import RUN_DATE_VARIABLE, daily_app_export_job

pytestmark = pytest.mark.integration

FIRST = dt.date(2021, 7, 1)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(31)]


def seed_month(harness: ExportHarness, deaneries: tuple[str, ...]) -> list[dict]:
    """Records arriving over the month: starts spread over the window, a crowded post, a broken record."""
    records = []
    for deanery in deaneries:
        for day in range(0, 120, 3):
            records += harness.add(deanery, FIRST + dt.timedelta(days=day), count=2)
        records += harness.add(
            deanery, FIRST + dt.timedelta(days=40), count=45, post_number=f"{deanery}/RJ122/022/F1/001"
        )
        (broken,) = harness.add(deanery, FIRST + dt.timedelta(days=20))
        harness.database[APP_RECORDS].update_one({"_id": broken["_id"]}, {"$unset": {"positionId": ""}})
    return records


def export_state(harness: ExportHarness) -> tuple:
    files = {name: path.read_bytes() for name, path in files_on_disk(harness.export_dir).items()}
    records = sorted(
        (d["placementId"], d["status"], d.get("exportedFileName"), d.get("generationError"))
        for d in harness.database[APP_RECORDS].find()
    )
    counters = sorted((d["_id"], d["seq"]) for d in harness.database[COUNTER].find())
    return files, records, counters


def test_a_month_backfilled_in_one_run_equals_running_each_day_in_order(harness, mongo_uri, tmp_path):
    seed_month(harness, ("EOE",))
    with harness_copy(harness, mongo_uri, tmp_path) as day_by_day:
        for day in DAYS:
            day_by_day.run_ok(day, "EOE")

        result = harness.run_range(DAYS[0], DAYS[-1], "EOE", "EOE")

        assert result.success
        assert export_state(harness) == export_state(day_by_day)
    assert len(files_on_disk(harness.export_dir)) > len(DAYS) // 3
    assert_export_invariants(harness.database, harness.export_dir)


def test_a_backfill_over_several_deaneries_is_one_run_with_one_materialization_per_partition(harness):
    seed_month(harness, ("EOE", "EMD", "KSS"))

    result = harness.run_range(DAYS[0], DAYS[6], "EOE", "KSS")

    assert result.success
    assert_export_invariants(harness.database, harness.export_dir)
    partitions = sorted(f"{day.isoformat()}|{d}" for day in DAYS[:7] for d in ("EOE", "EMD", "KSS"))
    for asset in ("app_record_selection", "app_export_file"):
        records = harness.instance.fetch_materializations(AssetKey(asset), limit=100).records
        # Exactly one materialization per partition, each holding that partition's own facts.
        assert sorted(r.partition_key for r in records) == partitions
        for record in records:
            run_date, deanery = record.partition_key.split("|")
            metadata = record.asset_materialization.metadata
            assert metadata["eligibility_window"].value == "D + 2 days <= startDate < D + 13 weeks"
            if asset == "app_export_file":
                names = [row.data["file"] for row in metadata["files"].records]
                assert all(f"_{deanery}_APP_{run_date.replace('-', '')}_" in name for name in names)
    summary = harness.run_summary(result)["2021-07-03|EMD"]
    assert summary["deanery"] == "EMD" and summary["run_date"] == "2021-07-03"
    assert sorted(harness.run_summary(result)) == partitions


def test_a_single_run_backfill_with_each_step_in_its_own_process_exports_and_reports_every_partition(
    harness, monkeypatch, tmp_path
):
    """As a deployment that chose Dagster's multiprocess executor would run a backfill launched from the UI:
    values between steps stored by Dagster's own IO manager, no asset value stored. (The project's runs are
    in-process; this keeps the IO manager's choice honest for either executor.)"""
    seed_month(harness, ("EOE", "EMD"))
    for name, value in {**harness.subprocess_env(), RUN_DATE_VARIABLE: DAYS[0].isoformat()}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "persistent_home").mkdir()

    # The multiprocess executor refuses the harness's in-memory instance: its steps meet in a persistent one.
    with instance_for_test(temp_dir=str(tmp_path / "persistent_home")) as instance:
        with execute_job(
            reconstructable(daily_app_export_job),
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: str(export_partition_key(DAYS[0], "EOE")),
                ASSET_PARTITION_RANGE_END_TAG: str(export_partition_key(DAYS[2], "EMD")),
            },
            run_config=QUIET_LOGS,
        ) as result:
            assert result.success
        materializations = {
            asset: instance.fetch_materializations(AssetKey(asset), limit=100).records
            for asset in ("app_record_selection", "app_export_file")
        }

    assert_export_invariants(harness.database, harness.export_dir)
    partitions = sorted(f"{day.isoformat()}|{d}" for day in DAYS[:3] for d in ("EOE", "EMD"))
    for records in materializations.values():
        assert sorted(r.partition_key for r in records) == partitions
    exported = harness.database[APP_RECORDS].count_documents({"status": "EXPORTED"})
    reported = sum(
        r.asset_materialization.metadata["exported_records"].value for r in materializations["app_export_file"]
    )
    assert exported == reported > 0


class harness_copy:
    """A second harness over its own database and directory, holding the same records."""

    def __init__(self, harness: ExportHarness, mongo_uri: str, tmp_path: Path) -> None:
        from dagster import DagsterInstance
        from pymongo import MongoClient

        self._client = MongoClient(mongo_uri)
        self._database = self._client[harness.database.name + "_b"]
        self._database[APP_RECORDS].insert_many([copy.deepcopy(d) for d in harness.database[APP_RECORDS].find()])
        (tmp_path / "home_b").mkdir()
        # In memory, as the harness's own instance is (conftest.py): an SQLite instance spent most of the
        # month's 31 runs syncing its event log to disk.
        self._instance_context = DagsterInstance.ephemeral(tempdir=str(tmp_path / "home_b"))
        self._harness = ExportHarness(
            uri=mongo_uri,
            database=self._database,
            export_dir=tmp_path / "export_b",
            instance=self._instance_context.__enter__(),
        )

    def __enter__(self) -> ExportHarness:
        return self._harness

    def __exit__(self, *exc_info: object) -> None:
        self._instance_context.__exit__(*exc_info)
        self._client.drop_database(self._database.name)
        self._client.close()


def run_ranges_of_a_ui_backfill(days: list[dt.date], deaneries: tuple[str, ...]) -> list[tuple[str, str]]:
    """The runs a single-run-policy backfill of this selection launches: Dagster's asset backfill makes one run
    per partition key range of the selected subset (build_run_requests_with_backfill_policies)."""
    keys = {str(export_partition_key(day, deanery)) for day in days for deanery in deaneries}
    subset = export_partitions.subset_with_partition_keys(keys)
    return sorted((key_range.start, key_range.end) for key_range in subset.get_partition_key_ranges(export_partitions))


def test_a_month_of_all_deaneries_backfilled_from_the_ui_is_one_run_per_deanery():
    ranges = run_ranges_of_a_ui_backfill(DAYS, DEANERIES)
    assert len(ranges) == len(DEANERIES) == 13
    assert ranges == sorted((f"{DAYS[0]}|{deanery}", f"{DAYS[-1]}|{deanery}") for deanery in DEANERIES)


def test_a_backfill_of_fewer_dates_than_deaneries_is_one_run_per_date():
    assert run_ranges_of_a_ui_backfill(DAYS[:3], DEANERIES) == [(f"{day}|EOE", f"{day}|YHD") for day in DAYS[:3]]


def test_a_backfill_of_deaneries_apart_in_the_list_is_one_run_per_deanery_even_for_one_date():
    assert run_ranges_of_a_ui_backfill(DAYS[:1], ("EOE", "KSS")) == [
        (f"{DAYS[0]}|EOE", f"{DAYS[0]}|EOE"),
        (f"{DAYS[0]}|KSS", f"{DAYS[0]}|KSS"),
    ]
