"""No file carries an applicant whose trainee has already started unless a data engineer decided so: such
records are withheld, left TO_EXPORT and counted; ``export_past_start: true`` sends them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dagster import AssetKey

from esr_export_dagster.checks import past_start_check
from esr_export_dagster.domain.past_start import RUN_CONFIG_FLAG, withheld_past_start
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.domain.stale_records import PAST_START, Finding, StalePolicy, describe
from esr_export_dagster.domain.streams import NOTIFICATION_STREAM
from esr_export_dagster.storage.selection import SelectedRecord

from .conftest import failure_message
from .invariants import assert_export_invariants, files_on_disk

UTC = dt.UTC
STARTERS = dt.date(2021, 8, 4)
MISSED_DAY = dt.date(2021, 7, 31)
README = Path(__file__).resolve().parents[1] / "README.md"


def selected(record_id: int, start: dt.date, *, valid: bool = True) -> SelectedRecord:
    return SelectedRecord(
        record_id, record_id, "EOE/P/1", start, start - dt.timedelta(days=3), () if valid else ("applicant.dob",)
    )


def test_a_start_date_of_today_or_earlier_is_withheld_and_tomorrow_is_not():
    today = dt.date(2021, 8, 4)
    records = [selected(1, today - dt.timedelta(days=1)), selected(2, today), selected(3, today + dt.timedelta(days=1))]

    assert withheld_past_start(records, today) == {1: dt.date(2021, 7, 31), 2: dt.date(2021, 8, 1)}
    assert withheld_past_start(records, None) == {}


def test_an_invalid_record_is_left_to_the_validity_rule_not_withheld():
    assert withheld_past_start([selected(1, dt.date(2021, 8, 1), valid=False)], dt.date(2021, 8, 4)) == {}


@pytest.mark.integration
def test_a_backfill_after_the_start_date_withholds_those_records_leaves_them_to_export_and_counts_them(harness):
    harness.now = dt.datetime(2021, 8, 5, 9, 30, tzinfo=UTC)
    started = harness.add("EOE", STARTERS, count=2)
    (on_today,) = harness.add("EOE", dt.date(2021, 8, 5))
    (later,) = harness.add("EOE", dt.date(2021, 8, 20))

    result = harness.run(MISSED_DAY, "EOE")

    assert result.success, failure_message(result)
    summary = harness.summary_of(result)
    assert summary["withheld_past_start"] == 3
    assert summary["exported_by_this_run"] == 1
    for record in [*started, on_today]:
        assert harness.records.find_one({"_id": record["_id"]})["status"] == TO_EXPORT
    assert harness.records.find_one({"_id": later["_id"]})["status"] == EXPORTED
    (name,) = files_on_disk(harness.export_dir)
    assert name == harness.file_name("EOE", MISSED_DAY, 1)
    event = harness.instance.get_latest_materialization_event(AssetKey("app_export_file"))
    assert event.asset_materialization.metadata["withheld_past_start"].value == 3
    assert result.dagster_run.run_config.get("ops") is None
    assert_export_invariants(harness.database, harness.export_dir)


@pytest.mark.integration
def test_export_past_start_sends_them_and_the_decision_is_on_the_run(harness):
    harness.now = dt.datetime(2021, 8, 5, 9, 30, tzinfo=UTC)
    started = harness.add("EOE", STARTERS, count=2)
    harness.run_ok(MISSED_DAY, "EOE")

    result = harness.run(MISSED_DAY, "EOE", export_past_start=True)

    assert result.success, failure_message(result)
    summary = harness.summary_of(result)
    assert summary["withheld_past_start"] == 0 and summary["exported_by_this_run"] == 2
    for record in started:
        stored = harness.records.find_one({"_id": record["_id"]})
        assert stored["status"] == EXPORTED and stored["exportedFileName"] == harness.file_name("EOE", MISSED_DAY, 1)
    config = result.dagster_run.run_config["ops"]["app_export_file"]["ops"]["open_app_export_batches"]["config"]
    assert config == {RUN_CONFIG_FLAG: True}
    assert_export_invariants(harness.database, harness.export_dir)


@pytest.mark.integration
def test_the_scheduled_run_of_the_day_exports_what_starts_after_it(harness):
    due = harness.add("LDN", MISSED_DAY + dt.timedelta(days=2), count=3)

    summary = harness.run_ok(MISSED_DAY, "LDN")

    assert summary["exported_by_this_run"] == len(due) and summary["withheld_past_start"] == 0


@pytest.mark.integration
@pytest.mark.parametrize("harness", [NOTIFICATION_STREAM], indirect=True, ids=["DNC"])
def test_notifications_have_no_start_date_and_are_never_withheld(harness):
    harness.now = dt.datetime(2030, 1, 1, tzinfo=UTC)
    notifications = harness.add_due("EOE", MISSED_DAY, count=2)

    summary = harness.run_ok(MISSED_DAY, "EOE")

    assert summary["exported_by_this_run"] == len(notifications)
    assert "withheld_past_start" not in _file_metadata(harness)


def test_the_alert_the_check_and_the_readme_give_the_same_way_out():
    finding = Finding("EOE", PAST_START, 2, STARTERS, (900001, 900002), ())
    alert = describe(finding, "new", "http://dagster.example:3000", StalePolicy())
    spec = past_start_check().spec
    readme_row = next(line for line in README.read_text().splitlines() if "(**past start**)" in line)
    for text in (alert, spec.description, readme_row):
        assert "hire by hand" in text
        assert f"{RUN_CONFIG_FLAG}: true" in text
        assert "withhold" in text


def _file_metadata(harness) -> dict:
    event = harness.instance.get_latest_materialization_event(harness.file_asset_key)
    return dict(event.asset_materialization.metadata)
