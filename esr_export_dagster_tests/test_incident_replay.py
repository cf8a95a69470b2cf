"""The July 2021 incident, replayed: late placements for 4 August starters, all deaneries at 13:00 UTC,
and WriteConflicts on the file-number counter. This time everything goes out, numbered without gaps."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import build_schedule_context

from esr_export_dagster.definitions import defs
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.schedules import daily_app_export_schedule
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER

from . import kill_points
from .conftest import wait_all
from .invariants import assert_export_invariants, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

STARTERS = dt.date(2021, 8, 4)
ADDED_LATE = dt.datetime(2021, 7, 30, 17, 45)
TICK = dt.datetime(2021, 7, 31, 13, 0, tzinfo=dt.timezone.utc)
PER_DEANERY = 4


def test_the_incident_tick_exports_every_deanery_through_write_conflicts(harness, fault_proxy):
    harness.database[COUNTER].insert_one({"_id": "APP_MER", "seq": 2765})
    placement = iter(range(700_000, 800_000))
    records = [
        applicant_record(next(placement), deanery, STARTERS, created=ADDED_LATE)
        for deanery in DEANERIES
        for _ in range(PER_DEANERY)
    ]
    harness.database[APP_RECORDS].insert_many(records)
    conflicts = fault_proxy.add(Rule(kill_points.counter_write, "write_conflict", times=2, per_shape=True))

    with build_schedule_context(scheduled_execution_time=TICK, repository_def=defs.get_repository_def()) as context:
        requests = list(daily_app_export_schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == len(DEANERIES)
    # All deaneries at once, as the 2021 cron job fired them.
    processes = [
        harness.start_subprocess_run(
            dt.date.fromisoformat(r.partition_key.keys_by_dimension["date"]),
            r.partition_key.keys_by_dimension["deanery"],
            uri=fault_proxy.uri,
        )
        for r in requests
    ]
    summaries = wait_all(processes)

    assert conflicts.applied == 2 * 3 * len(DEANERIES)  # open, number, close: twice each, per deanery
    assert harness.database[APP_RECORDS].count_documents({"status": EXPORTED}) == len(records)
    expected = {
        f"DE_{d}_APP_20210731_{(2766 if d == 'MER' else 1):08d}.DAT" for d in DEANERIES
    }
    assert set(files_on_disk(harness.export_dir)) == expected
    assert all(s["exported_by_this_run"] == PER_DEANERY for s in summaries)
    assert_export_invariants(harness.database, harness.export_dir, first_sequence={"MER": 2766})
