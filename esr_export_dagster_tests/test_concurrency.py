"""Runs of one deanery at the same time (a backfill beside the schedule, overlapping partitions)."""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.storage.collections import APP_RECORDS

from . import kill_points
from .conftest import wait_all
from .invariants import assert_export_invariants, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)


def test_overlapping_partitions_of_one_deanery_running_together_export_each_record_once(harness, fault_proxy):
    # Start dates eligible on all of D-1, D and D+1, plus some that only D+1's window reaches.
    shared = harness.add("WMD", RUN_DATE + dt.timedelta(days=6), count=30)
    only_latest = harness.add("WMD", RUN_DATE + dt.timedelta(weeks=13), count=5)
    fault_proxy.add(Rule(kill_points.counter_write, "write_conflict", times=1, per_shape=True))
    dates = [RUN_DATE - dt.timedelta(days=1), RUN_DATE, RUN_DATE, RUN_DATE + dt.timedelta(days=1)]

    processes = [harness.start_subprocess_run(date, "WMD", uri=fault_proxy.uri) for date in dates]
    summaries = wait_all(processes)

    assert sum(s["exported_by_this_run"] for s in summaries) == len(shared) + len(only_latest)
    assert harness.database[APP_RECORDS].count_documents({"status": EXPORTED}) == len(shared) + len(only_latest)
    assert harness.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
    assert 1 <= len(files_on_disk(harness.export_dir)) <= len(dates)
    assert_export_invariants(harness.database, harness.export_dir)
