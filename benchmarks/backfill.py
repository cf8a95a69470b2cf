"""A month's backfill of every deanery as one single-run backfill, against a plain-pymongo floor that does per
partition what the export must, on an identical copy of the data, on the same server, in one process.

Run (issue 17, benchmark (c)): PYTHONPATH=. .venv/bin/python -m benchmarks.backfill [--days 31] [--per-day 300] [--pairs 1]
Seeds, for each of the 13 deaneries and each day of the month, ``--per-day`` records whose window opens that
very day (start date = day + 13 weeks - 1 day), so every (day, deanery) partition exports exactly that many,
into two fresh databases of the embedded stand-in (or ESR_BENCH_MONGODB_URI). Then times, the floor first in
odd pairs and the export first in even ones:
  floor:  per partition, day by day, one query for its eligible records, one CSV written and fsynced, one
          bulk update marking them;
  export: the code location's daily_app_export_job as Dagster's single-run backfill launches it, one run
          over the date x deanery rectangle.
Scheduling by the daemon is not included: test_ui_journey.py runs a backfill through the daemon.
Prints the runs and files the export left, its peak RSS, and last the median ratio export/floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dagster import DagsterInstance
from pymongo import MongoClient

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.storage.collections import APP_RECORDS

from .common import (
    SEED_BATCH,
    PairCopies,
    alternate_pairs,
    benchmark_mongodb,
    current_peak_rss_mb,
    export_job,
    export_settings,
    floor_partition,
    median_ratio,
    reset_peak_rss,
    single_run,
    summary,
)

FIRST = dt.date(2021, 7, 1)


def backfill_batches(days: list[dt.date], per_day: int) -> Iterator[list[dict]]:
    """``per_day`` records per deanery eligible on each of ``days``, about 10,000 at a time."""
    placement = iter(range(1, 10_000_000))
    batch: list[dict] = []
    for day in days:
        for deanery in DEANERIES:
            for n in range(per_day):
                batch.append(
                    applicant_record(
                        next(placement),
                        deanery,
                        day + dt.timedelta(weeks=13) - dt.timedelta(days=1),
                        post_number=f"{deanery}/RGT00/{n % 60:03d}/FY1/001",
                    )
                )
            if len(batch) >= SEED_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=1, help="pairs of floor and export, each on fresh data")
    arguments = parser.parse_args()
    days = [FIRST + dt.timedelta(days=n) for n in range(arguments.days)]
    job = export_job(FIRST)
    peaks: list[float] = []
    left: list[tuple[int, int]] = []
    with benchmark_mongodb() as uri, MongoClient(uri) as client, tempfile.TemporaryDirectory() as tmp:
        copies = PairCopies(client, Path(tmp), "esr_bench_backfill")

        def prepare(n: int) -> None:
            copies.prepare(n, backfill_batches(days, arguments.per_day))

        def floor(n: int) -> None:
            name = copies.databases(n)[0]
            for day in days:
                for deanery in DEANERIES:
                    assert (
                        floor_partition(client[name][APP_RECORDS], deanery, day, copies.folder(name))
                        == arguments.per_day
                    )
            assert client[name][APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0

        def export(n: int) -> None:
            name = copies.databases(n)[1]
            reset_peak_rss()
            with export_settings(uri, name, copies.folder(name)), DagsterInstance.ephemeral() as instance:
                single_run(job, instance, days[0], days[-1], DEANERIES)
                runs = len(instance.get_run_records())
            peaks.append(current_peak_rss_mb())
            assert client[name][APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
            left.append((runs, len(list(copies.folder(name).glob("*.DAT")))))

        partitions = len(days) * len(DEANERIES)
        print(
            f"backfill of {len(days)} days x {len(DEANERIES)} deaneries x {arguments.per_day} records "
            f"({partitions * arguments.per_day:,} records, {partitions} partitions):",
            flush=True,
        )
        results = alternate_pairs(arguments.pairs, prepare, floor, export)
        copies.drop(arguments.pairs - 1)
    runs, files = left[-1]
    print(summary(f"backfill of {partitions} partitions", results))
    print(f"the export: {runs} run(s) launched (goal: one), {files} files written; peak RSS {max(peaks):.0f} MB")
    print(f"ratio export/floor = {median_ratio(results):.2f}")


if __name__ == "__main__":
    main()
