"""Where a day's export spends its time: MongoDB round trips by command and collection (pymongo command
monitoring, as the client sees each reply) and the client's own time (cProfile).

Run: PYTHONPATH=. .venv/bin/python -m benchmarks.breakdown [--per-deanery 300] [--runs 13] [--top 40]\n     [--backfill-days N] (instead of the day's runs, the single-run backfill of benchmarks.backfill)
Seeds one run date's eligible records (as export_throughput does) and runs the daily schedule's
one-partition runs of the first ``--runs`` deaneries under both instruments. Prints the time per command,
then the profile's functions by cumulative time. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance
from pymongo import MongoClient, monitoring

from esr_export_dagster.domain.deaneries import DEANERIES

from . import backfill
from .common import (
    benchmark_mongodb,
    export_job,
    export_settings,
    in_batches,
    scheduled_runs,
    seed_databases,
    single_run,
)
from .export_throughput import RUN_DATE, day_records


def _shape(command: Mapping[str, Any]) -> str:
    """The fields a command filters on (never their values), to tell its queries apart."""
    query = command.get("filter") or command.get("query")
    if query is None and command.get("updates"):
        query = command["updates"][0].get("q")
    if query is None and command.get("pipeline"):
        query = command["pipeline"][0].get("$match")
    return ",".join(sorted(query)) if isinstance(query, Mapping) else ""


class CommandTimes(monitoring.CommandListener):
    """Count and total duration of each (command, collection), as the client measured each round trip."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
        self._pending: dict[int, tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        name = target if isinstance(target, str) else ""
        self._pending[event.request_id] = (event.command_name, f"{name} {_shape(event.command)}".strip())

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._record(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._record(event)

    def _record(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        key = self._pending.pop(event.request_id, (event.command_name, ""))
        entry = self.calls[key]
        entry[0] += 1
        entry[1] += event.duration_micros / 1e6


def step_times(instance: DagsterInstance) -> dict[str, float]:
    """Seconds per step key over every run in the instance."""
    totals: dict[str, float] = defaultdict(float)
    for record in instance.get_run_records():
        started: dict[str, float] = {}
        for entry in instance.all_logs(record.dagster_run.run_id):
            if not entry.is_dagster_event or entry.step_key is None:
                continue
            if entry.dagster_event_type == DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif entry.dagster_event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                totals[entry.step_key] += entry.timestamp - started.pop(entry.step_key, entry.timestamp)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-deanery", type=int, default=300)
    parser.add_argument("--runs", type=int, default=len(DEANERIES))
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--backfill-days", type=int, help="profile the single-run backfill of this many days (benchmarks.backfill)"
    )
    arguments = parser.parse_args()
    listener = CommandTimes()
    job = export_job(RUN_DATE)
    backfill_job = export_job(backfill.FIRST)
    with benchmark_mongodb() as uri, tempfile.TemporaryDirectory() as tmp:
        with MongoClient(uri) as client:
            if arguments.backfill_days:
                days = [backfill.FIRST + dt.timedelta(days=n) for n in range(arguments.backfill_days)]
                seed_databases(client, ["esr_bench_breakdown"], backfill.backfill_batches(days, arguments.per_deanery))
            else:
                seed_databases(
                    client, ["esr_bench_breakdown"], in_batches(day_records(arguments.per_deanery * len(DEANERIES)))
                )
        monitoring.register(listener)
        profile = cProfile.Profile()
        out = Path(tmp) / "out"
        out.mkdir()
        with export_settings(uri, "esr_bench_breakdown", out), DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            profile.enable()
            if arguments.backfill_days:
                single_run(backfill_job, instance, days[0], days[-1], DEANERIES)
            else:
                scheduled_runs(job, instance, RUN_DATE, DEANERIES[: arguments.runs])
            profile.disable()
            elapsed = time.perf_counter() - started
            steps = step_times(instance)
    total_server = sum(seconds for _, seconds in listener.calls.values())
    what = (
        f"backfill of {arguments.backfill_days} days"
        if arguments.backfill_days
        else f"{arguments.runs} one-partition run(s)"
    )
    print(f"{what} of {arguments.per_deanery} records: {elapsed:.2f} s wall")
    print(f"MongoDB round trips: {sum(n for n, _ in listener.calls.values())}, {total_server:.2f} s")
    for (command, collection), (count, seconds) in sorted(listener.calls.items(), key=lambda item: -item[1][1]):
        print(f"  {command:>16} {collection:<60} {count:6d} calls {seconds:8.3f} s")
    print("Dagster steps (from each step's start to its success or failure event), totals over the runs:")
    for step, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"  {step:<60} {seconds:8.3f} s")
    print(f"  {'sum of the steps':<60} {sum(steps.values()):8.3f} s; the rest is the runs' own start and end")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(arguments.top)


if __name__ == "__main__":
    main()
