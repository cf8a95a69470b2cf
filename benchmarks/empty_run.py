"""A run with nothing eligible, against the bare cost of a Dagster run of an empty op, in the same process
and on the same Dagster instance, pair by pair.

Run (issue 17, benchmark (d)): PYTHONPATH=. .venv/bin/python -m benchmarks.empty_run [--pairs 10]
Seeds 1,000 records into the embedded stand-in (or ESR_BENCH_MONGODB_URI), all EXPORTED already, then times
in turn (the empty job first in odd pairs, the export first in even ones):
  floor:  a one-op job whose op does nothing, executed in process;
  export: one one-partition run of the code location's daily_app_export_job, tagged as the daily schedule
          tags it, for a deanery-day with nothing eligible (each pair a deanery-day of its own).
Prints each pair and last the median of (export - empty run) (goal <= 1.5 s) and of their ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, JobDefinition, job, op
from pymongo import MongoClient

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.storage.collections import APP_RECORDS, ensure_indexes

from .common import QUIET_LOGS, alternate_pairs, benchmark_mongodb, export_job, export_settings, scheduled_runs, timed

RUN_DATE = dt.date(2021, 7, 31)
DATABASE = "esr_bench_empty_run"


@op
def do_nothing() -> None:
    """The least a Dagster op can be."""


@job
def empty_job() -> None:
    do_nothing()


def empty_steps(count: int) -> JobDefinition:
    """A job of ``count`` steps, each doing nothing: the Dagster floor of a run with as many steps."""

    @job(name=f"empty_steps_{count}")
    def steps() -> None:
        for n in range(count):
            do_nothing.alias(f"do_nothing_{n}")()

    return steps


def step_count(instance: DagsterInstance) -> int:
    """The steps the most recent run started."""
    run_id = instance.get_run_records(limit=1)[0].dagster_run.run_id
    return len(instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10)
    arguments = parser.parse_args()
    export = export_job(RUN_DATE)
    with (
        benchmark_mongodb() as uri,
        MongoClient(uri) as client,
        tempfile.TemporaryDirectory() as tmp,
        export_settings(uri, DATABASE, Path(tmp)),
        DagsterInstance.ephemeral() as instance,
    ):
        client.drop_database(DATABASE)
        ensure_indexes(client[DATABASE])
        client[DATABASE][APP_RECORDS].insert_many(
            [
                applicant_record(n, DEANERIES[n % len(DEANERIES)], RUN_DATE + dt.timedelta(days=10), status=EXPORTED)
                for n in range(1, 1001)
            ]
        )

        def partition(n: int) -> tuple[dt.date, str]:
            return RUN_DATE + dt.timedelta(days=n // len(DEANERIES)), DEANERIES[n % len(DEANERIES)]

        def empty(n: int) -> None:
            assert empty_job.execute_in_process(instance=instance, run_config=QUIET_LOGS).success

        def nothing_eligible(n: int) -> None:
            run_date, deanery = partition(n)
            scheduled_runs(export, instance, run_date, [deanery])

        # One of each first, not counted: imports and first connections.
        empty(0)
        nothing_eligible(arguments.pairs)
        as_many_steps = empty_steps(step_count(instance))
        results = alternate_pairs(arguments.pairs, lambda n: None, empty, nothing_eligible)
        same_steps = [
            timed(lambda _: as_many_steps.execute_in_process(instance=instance, run_config=QUIET_LOGS), n)
            for n in range(arguments.pairs)
        ]
        client.drop_database(DATABASE)
    print(f"empty Dagster run: median {statistics.median(f for f, _ in results):.2f} s")
    print(
        f"empty Dagster run of {len(as_many_steps.graph.nodes)} empty steps (as many as the export's "
        f"run): median {statistics.median(same_steps):.2f} s"
    )
    print(f"run with nothing eligible: median {statistics.median(e for _, e in results):.2f} s")
    print(f"ratio = {statistics.median(e / f for f, e in results):.2f}")
    print(f"difference export - empty run = {statistics.median(e - f for f, e in results):.2f} s (goal <= 1.5 s)")


if __name__ == "__main__":
    main()
