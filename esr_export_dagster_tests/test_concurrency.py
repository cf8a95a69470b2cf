"""Runs at the same time: of one deanery (a backfill beside the schedule, overlapping partitions), and of all
thirteen at the schedule's tick, taking numbers from the one shared counter (the 2021 contention)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    JobDefinition,
    build_schedule_context,
)

from esr_export_dagster.definitions import defs
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.esr_csv import parse_export_file_name
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.partitions import DEANERY_TAG, export_partition_key
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER
from esr_export_dagster.stream_definitions import APP_EXPORT_SPEC, build_export_stream_definitions

from . import kill_points
from .conftest import QUIET_LOGS, each_scope, failure_message, wait_all
from .invariants import file_placements, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
STARTERS = dt.date(2021, 8, 4)


@each_scope
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
    harness.assert_invariants()


# The 2021 contention: the APP schedule's 13:00 tick, every deanery at once, all taking numbers from the one
# shared counter document, as the legacy exporter did.
TICK = dt.datetime(2021, 7, 31, 13, 0, tzinfo=dt.UTC)


def tick_partitions(tick: dt.datetime) -> list[tuple[dt.date, str]]:
    """The (date, deanery) partitions the real daily APP schedule requests at ``tick``."""
    schedule = defs.resolve_schedule_def("daily_app_export_schedule")
    with build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    return [
        (dt.date.fromisoformat(r.partition_key.keys_by_dimension["date"]), r.partition_key.keys_by_dimension["deanery"])
        for r in requests
    ]


def run_all_at_once(job: JobDefinition, partitions: list[tuple[dt.date, str]]) -> list[ExecuteInProcessResult]:
    """Each partition's run of ``job`` in its own thread and instance, released together at one barrier."""
    start = threading.Barrier(len(partitions))

    def run(partition: tuple[dt.date, str]) -> ExecuteInProcessResult:
        run_date, deanery = partition
        with DagsterInstance.ephemeral() as instance:
            start.wait()
            return job.execute_in_process(
                partition_key=export_partition_key(run_date, deanery),
                instance=instance,
                tags={DEANERY_TAG: deanery},
                run_config=QUIET_LOGS,
                raise_on_error=False,
            )

    with ThreadPoolExecutor(len(partitions)) as pool:
        return list(pool.map(run, partitions))


def contention_job(harness, uri: str, retry: bool) -> JobDefinition:
    """The real daily APP job against ``uri``; without ``retry``, its counter op carries no retry policy."""
    if retry:
        return harness.definitions(uri=uri, run_date=TICK.date()).resolve_job_def("daily_app_export_job")
    without_retry = build_export_stream_definitions(replace(APP_EXPORT_SPEC, allocation_retry_policy=None))
    definitions = Definitions.merge(without_retry, Definitions(resources=harness.resources(uri, None, TICK.date())))
    return definitions.resolve_job_def(APP_STREAM.job_name)


def add_late_starters(harness) -> dict[str, list[int]]:
    return {
        deanery: [record["placementId"] for record in harness.add(deanery, STARTERS, count=2)] for deanery in DEANERIES
    }


def test_thirteen_deaneries_at_one_tick_share_one_counter_through_write_conflicts(harness, fault_proxy):
    placements = add_late_starters(harness)
    conflicts = fault_proxy.add(Rule(kill_points.counter_write, "write_conflict", times=2, per_shape=True))
    partitions = tick_partitions(TICK)
    assert sorted(deanery for _, deanery in partitions) == sorted(DEANERIES)

    results = run_all_at_once(contention_job(harness, fault_proxy.uri, retry=True), partitions)

    assert all(result.success for result in results), [failure_message(r) for r in results if not r.success]
    # Open, number and close: each of them twice per deanery, on the one counter document.
    assert conflicts.applied == 2 * 3 * len(DEANERIES)
    files = files_on_disk(harness.export_dir)
    numbers = sorted(parse_export_file_name(name).sequence for name in files)
    assert numbers == list(range(1, len(DEANERIES) + 1)), "one contiguous run, one number per file"
    by_deanery = {parse_export_file_name(name).deanery: path for name, path in files.items()}
    assert sorted(by_deanery) == sorted(DEANERIES), "one file per deanery"
    for deanery, path in by_deanery.items():
        assert sorted(file_placements(path)) == sorted(placements[deanery])
    assert harness.database[COUNTER].find_one({"_id": "APP"})["seq"] == len(DEANERIES)
    harness.assert_invariants()


def test_without_the_counter_ops_retry_policy_the_same_tick_fails(harness, fault_proxy):
    add_late_starters(harness)
    conflicts = fault_proxy.add(Rule(kill_points.numbers_batch, "write_conflict", times=2, per_shape=True))

    results = run_all_at_once(contention_job(harness, fault_proxy.uri, retry=False), tick_partitions(TICK))

    assert not any(result.success for result in results)
    assert conflicts.applied == len(DEANERIES), "each run stopped at its first WriteConflict"
    for result in results:
        (failed,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failed.step_key == "app_export_file.allocate_app_file_sequence"
    # Nothing was lost: no number taken, no file, every record still waiting in an open, unnumbered batch.
    assert harness.database[COUNTER].find_one({"_id": "APP"})["seq"] == 0
    assert files_on_disk(harness.export_dir) == {}
    assert harness.records.count_documents({"status": TO_EXPORT}) == 2 * len(DEANERIES)
