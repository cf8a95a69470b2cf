"""One day's export at a given size: the daily schedule's 13 one-partition runs against a plain-pymongo
floor on an identical copy of the same data, on the same server, in one process, pair by pair.

Run (issue 17, benchmarks (a) and (b)):
  PYTHONPATH=. .venv/bin/python -m benchmarks.export_throughput --per-deanery 300 --pairs 4    # (a), goal <= 2.0
  PYTHONPATH=. .venv/bin/python -m benchmarks.export_throughput --per-deanery 1500 --pairs 2   # (a), goal <= 1.3
  PYTHONPATH=. .venv/bin/python -m benchmarks.export_throughput --records 100000 --pairs 1     # (b), goal <= 1.2
Each pair seeds the same eligible records (spread over the 13 deaneries and over the export window of one
run date) into two fresh databases of the embedded stand-in (or ESR_BENCH_MONGODB_URI), then times, the floor
first in odd pairs and the export first in even ones:
  floor:  per deanery one query for the eligible records, one CSV written and fsynced, one bulk update;
  export: the code location's daily_app_export_job, 13 one-partition runs as the 13:00 schedule launches
          them (--single-run: one run over the 13 partitions, as a single-run backfill launches it).
Prints each pair, the export's peak RSS, and last the median ratio export/floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

from dagster import DagsterInstance
from pymongo import MongoClient

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.storage.collections import APP_RECORDS

from .common import (
    PairCopies,
    alternate_pairs,
    benchmark_mongodb,
    current_peak_rss_mb,
    export_job,
    export_settings,
    floor_partition,
    in_batches,
    median_ratio,
    reset_peak_rss,
    scheduled_runs,
    single_run,
    summary,
)

RUN_DATE = dt.date(2021, 7, 31)


def day_records(total: int) -> list[dict]:
    """``total`` eligible records for RUN_DATE, dealt to the 13 deaneries in turn, starting over 80 days."""
    return [
        applicant_record(
            placement,
            DEANERIES[placement % len(DEANERIES)],
            RUN_DATE + dt.timedelta(days=2 + placement % 80),
            post_number=f"{DEANERIES[placement % len(DEANERIES)]}/RGT00/{placement % 600:03d}/FY1/001",
        )
        for placement in range(1, total + 1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--records", type=int, help="records in the day, over the 13 deaneries (default 100,000)")
    size.add_argument("--per-deanery", type=int, help="records per deanery")
    parser.add_argument("--pairs", type=int, default=1, help="pairs of floor and export, each on fresh data")
    parser.add_argument("--single-run", action="store_true", help="one run over the 13 partitions")
    arguments = parser.parse_args()
    total = arguments.per_deanery * len(DEANERIES) if arguments.per_deanery else arguments.records or 100_000
    job = export_job(RUN_DATE)
    peaks: list[float] = []
    with benchmark_mongodb() as uri, MongoClient(uri) as client, tempfile.TemporaryDirectory() as tmp:
        copies = PairCopies(client, Path(tmp), "esr_bench")

        def prepare(n: int) -> None:
            copies.prepare(n, in_batches(day_records(total)))

        def floor(n: int) -> None:
            name = copies.databases(n)[0]
            for deanery in DEANERIES:
                floor_partition(client[name][APP_RECORDS], deanery, RUN_DATE, copies.folder(name))
            assert client[name][APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0

        def export(n: int) -> None:
            name = copies.databases(n)[1]
            reset_peak_rss()
            with export_settings(uri, name, copies.folder(name)), DagsterInstance.ephemeral() as instance:
                if arguments.single_run:
                    single_run(job, instance, RUN_DATE, RUN_DATE, DEANERIES)
                else:
                    scheduled_runs(job, instance, RUN_DATE, DEANERIES)
            peaks.append(current_peak_rss_mb())
            assert client[name][APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0

        how = "one run over 13 partitions" if arguments.single_run else "13 one-partition runs"
        print(
            f"{total:,} eligible records for {RUN_DATE} ({total // len(DEANERIES):,} per deanery), {how}:", flush=True
        )
        results = alternate_pairs(arguments.pairs, prepare, floor, export)
        copies.drop(arguments.pairs - 1)
    print(summary(f"{total:,} records, {how}", results))
    print(f"peak RSS during the export: {max(peaks):.0f} MB (whole process: the high-water mark since its reset)")
    print(f"ratio export/floor = {median_ratio(results):.2f}")


if __name__ == "__main__":
    main()
