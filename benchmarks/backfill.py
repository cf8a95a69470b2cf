"""A month's backfill of every deanery: how many runs, how long, and how that compares with one partition.

Run: .venv/bin/python -m benchmarks.backfill [--days 31] [--per-day 300]
Seeds, for each of the 13 deaneries and each day of the month, `--per-day` records whose window opens that
very day (start date = day + 13 weeks - 1 day), so every (day, deanery) partition exports exactly that many.
Then launches the backfill as Dagster's single-run backfill policy does (one run over the date × deanery
range) and times it; then times one partition's run on a copy of the data, for the ratio.
Scheduling by the daemon is not included: test_ui_journey.py runs the same backfill through the daemon.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance
from pymongo import MongoClient

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.partitions import export_partition_key
from esr_export_dagster.storage.collections import APP_RECORDS, ensure_indexes

from .common import QUIET_LOGS, benchmark_mongodb, export_job, peak_rss_mb, range_tags

FIRST = dt.date(2021, 7, 1)


def seed(client: MongoClient, name: str, days: list[dt.date], per_day: int) -> int:
    client.drop_database(name)
    ensure_indexes(client[name])
    placement = iter(range(1, 10_000_000))
    batch: list[dict] = []
    total = 0
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
            if len(batch) >= 10_000:
                client[name][APP_RECORDS].insert_many(batch, ordered=False)
                total += len(batch)
                batch = []
    if batch:
        client[name][APP_RECORDS].insert_many(batch, ordered=False)
        total += len(batch)
    return total


def run(uri: str, name: str, out: Path, first: str, last: str) -> tuple[float, int]:
    job = export_job(uri, name, str(out), FIRST)
    with DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, run_config=QUIET_LOGS, tags=range_tags(first, last))
        elapsed = time.perf_counter() - started
        assert result.success
        return elapsed, len(instance.get_run_records())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--per-day", type=int, default=300)
    arguments = parser.parse_args()
    days = [FIRST + dt.timedelta(days=n) for n in range(arguments.days)]
    with benchmark_mongodb() as uri, MongoClient(uri) as client, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        total = seed(client, "esr_bench_backfill", days, arguments.per_day)
        seed(client, "esr_bench_one", days[:1], arguments.per_day)
        print(
            f"seeded {total:,} records ({arguments.days} days x {len(DEANERIES)} deaneries x {arguments.per_day}) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        for path in ("backfill", "one"):
            (Path(tmp) / path).mkdir()
        whole, runs = run(
            uri,
            "esr_bench_backfill",
            Path(tmp) / "backfill",
            str(export_partition_key(days[0], DEANERIES[0])),
            str(export_partition_key(days[-1], DEANERIES[-1])),
        )
        assert client["esr_bench_backfill"][APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
        files = len(list((Path(tmp) / "backfill").glob("*.DAT")))
        one_key = str(export_partition_key(days[0], DEANERIES[0]))
        single, _ = run(uri, "esr_bench_one", Path(tmp) / "one", one_key, one_key)
        for name in ("esr_bench_backfill", "esr_bench_one"):
            client.drop_database(name)
    partitions = arguments.days * len(DEANERIES)
    print(
        f"backfill of {partitions} partitions: {runs} run(s) launched (goal <= 13), {files} files, "
        f"{whole:.1f} s wall (goal < 60 s), {total / whole:,.0f} records/s"
    )
    print(
        f"one partition's run: {single:.2f} s; the whole backfill took {whole / single:.1f}x one partition "
        f"(running the {partitions} partitions one by one would take about {partitions * single:.0f} s)"
    )
    print(f"peak RSS of this process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
