"""Every partition's materialization holds that partition's own facts, after a one-partition run or a range
run: this run's records for its date and deanery, its files as a table, and its totals across all runs."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import AssetKey, AssetRecordsFilter, MultiPartitionKey

from esr_export_dagster.domain.esr_csv import parse_export_file_name

from .conftest import ExportHarness, failure_message
from .invariants import assert_export_invariants, file_placements, files_on_disk

pytestmark = pytest.mark.integration

FIRST = dt.date(2021, 7, 1)
DATES = [FIRST + dt.timedelta(days=n) for n in range(3)]
DEANERIES = ("EOE", "EMD")
FILE_ASSET = AssetKey("app_export_file")
SELECTION_ASSET = AssetKey("app_record_selection")


def key(run_date: dt.date, deanery: str) -> MultiPartitionKey:
    return MultiPartitionKey({"date": run_date.isoformat(), "deanery": deanery})


def seed(harness: ExportHarness) -> dict[tuple[dt.date, str], int]:
    """A different number of records due on each (date, deanery), one partition needing two files."""
    due = {}
    for d, run_date in enumerate(DATES):
        for k, deanery in enumerate(DEANERIES):
            count = 1 + d + 3 * k
            harness.add_due(deanery, run_date, count=count)
            due[(run_date, deanery)] = count
    harness.add_due("EMD", DATES[1], count=42, post_number="EMD/RGT00/021/FY1/010")
    due[(DATES[1], "EMD")] += 42
    return due


def metadata_of(harness: ExportHarness, asset: AssetKey, run_date: dt.date, deanery: str) -> dict:
    """What the instance stores as the partition's latest materialization (what its UI panel shows)."""
    records = harness.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset, asset_partitions=[str(key(run_date, deanery))]), limit=1
    ).records
    assert records, f"no materialization of {asset.to_user_string()} {run_date}|{deanery}"
    return dict(records[0].asset_materialization.metadata)


def files_of(harness: ExportHarness, run_date: dt.date, deanery: str) -> dict[str, int]:
    """The partition's files on disk, with their line counts."""
    return {
        name: len(file_placements(path))
        for name, path in files_on_disk(harness.export_dir, deanery).items()
        if parse_export_file_name(name).run_date == run_date
    }


def table_of(metadata: dict) -> dict[str, dict]:
    return {record.data["file"]: record.data for record in metadata["files"].records}


def test_a_range_run_gives_every_partition_its_own_files_counts_and_totals(harness):
    due = seed(harness)

    result = harness.run_range(DATES[0], DATES[-1], DEANERIES[0], DEANERIES[-1])

    assert result.success, failure_message(result)
    assert_export_invariants(harness.database, harness.export_dir)
    for (run_date, deanery), count in due.items():
        metadata = metadata_of(harness, FILE_ASSET, run_date, deanery)
        on_disk = files_of(harness, run_date, deanery)
        table = table_of(metadata)
        assert set(table) == set(on_disk)
        assert {name: row["lines"] for name, row in table.items()} == on_disk
        assert all(row["this_run"] and row["state"] == "COMPLETE" for row in table.values())
        assert [row["sequence"] for row in table.values()] == [parse_export_file_name(n).sequence for n in table]
        assert metadata["sequence_numbers"].value == ", ".join(str(row["sequence"]) for row in table.values())
        assert metadata["exported_records"].value == sum(on_disk.values()) == count
        assert metadata["total_exported_records"].value == count
        assert metadata["file_count"].value == len(on_disk)
        assert "partitions" not in metadata and "stored_partitions" not in metadata
        partition_filter = AssetRecordsFilter(asset_key=FILE_ASSET, asset_partitions=[str(key(run_date, deanery))])
        assert len(harness.instance.fetch_materializations(partition_filter, limit=10).records) == 1
        selection = metadata_of(harness, SELECTION_ASSET, run_date, deanery)
        assert selection["eligible_records"].value == count
    assert len(files_of(harness, DATES[1], "EMD")) == 2
    assert metadata_of(harness, FILE_ASSET, DATES[1], "EMD")["largest_per_post_count"].value == 40


def test_running_a_partition_twice_shows_nothing_new_beside_what_the_partition_holds(harness):
    harness.add_due("LDN", FIRST, count=3)
    harness.run_ok(FIRST, "LDN")

    summary = harness.run_ok(FIRST, "LDN")

    assert summary["exported_by_this_run"] == 0
    metadata = metadata_of(harness, FILE_ASSET, FIRST, "LDN")
    assert metadata["exported_records"].value == 0
    assert metadata["total_exported_records"].value == 3
    (row,) = table_of(metadata).values()
    assert row["lines"] == 3 and row["this_run"] is False
    assert metadata["outcome"].value.startswith("Nothing new")
