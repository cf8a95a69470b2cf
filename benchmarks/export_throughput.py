"""Export throughput: the project's job against a plain-pymongo floor, on the same data, in one process.

Run: .venv/bin/python -m benchmarks.export_throughput [--records 100000]
Seeds N eligible records across the 13 deaneries for one run date into two identical databases of the
embedded stand-in (or ESR_BENCH_MONGODB_URI), then times:
  (a) the floor: per deanery, one query for the eligible records, one CSV written, one bulk update;
  (b) the job: one run over that date's 13 partitions (as a single-run backfill launches it), and
      13 one-partition runs (as the 13:00 schedule launches them).
Prints (b)/(a) (goal <= 1.5) and the process's peak RSS (goal < 500 MB).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance
from pymongo import MongoClient

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.partitions import DEANERY_TAG, export_partition_key
from esr_export_dagster.storage.collections import APP_RECORDS, ensure_indexes

from .common import QUIET_LOGS, benchmark_mongodb, export_job, peak_rss_mb, range_tags

RUN_DATE = dt.date(2021, 7, 31)


def seed(client: MongoClient, names: list[str], total: int) -> None:
    records = [
        applicant_record(
            placement,
            DEANERIES[placement % len(DEANERIES)],
            RUN_DATE + dt.timedelta(days=2 + placement % 80),
            post_number=f"{DEANERIES[placement % len(DEANERIES)]}/RGT00/{placement % 600:03d}/FY1/001",
        )
        for placement in range(1, total + 1)
    ]
    for name in names:
        client.drop_database(name)
        ensure_indexes(client[name])
        for start in range(0, total, 10_000):
            client[name][APP_RECORDS].insert_many(records[start : start + 10_000], ordered=False)


def floor(client: MongoClient, name: str, out: Path) -> float:
    """The least any exporter must do: read, write, mark; no plan, no ledger, no Dagster."""
    collection = client[name][APP_RECORDS]
    started = time.perf_counter()
    for deanery in DEANERIES:
        query = {
            "deanery": deanery,
            "status": TO_EXPORT,
            "startDate": {
                "$gte": dt.datetime.combine(RUN_DATE + dt.timedelta(days=2), dt.time.min),
                "$lt": dt.datetime.combine(RUN_DATE + dt.timedelta(weeks=13), dt.time.min),
            },
        }
        ids = []
        file_name = f"DE_{deanery}_APP_{RUN_DATE:%Y%m%d}_00000001.DAT"
        with (out / file_name).open("w", newline="") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
            for document in collection.find(query):
                ids.append(document["_id"])
                applicant = document["applicant"]
                writer.writerow(
                    [
                        "APP",
                        document["placementId"],
                        document["positionId"],
                        document["positionNumber"],
                        document["deaneryPostNumber"],
                        *(str(value) for value in applicant.values()),
                    ]
                )
        collection.update_many({"_id": {"$in": ids}}, {"$set": {"status": EXPORTED, "exportedFileName": file_name}})
    return time.perf_counter() - started


def job_runs(uri: str, name: str, out: Path, single_run: bool) -> float:
    job = export_job(uri, name, str(out), RUN_DATE)
    with DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        if single_run:
            first, last = (str(export_partition_key(RUN_DATE, d)) for d in (DEANERIES[0], DEANERIES[-1]))
            assert job.execute_in_process(
                instance=instance, run_config=QUIET_LOGS, tags=range_tags(first, last)
            ).success
        else:
            for deanery in DEANERIES:
                assert job.execute_in_process(
                    instance=instance,
                    run_config=QUIET_LOGS,
                    partition_key=export_partition_key(RUN_DATE, deanery),
                    tags={DEANERY_TAG: deanery},
                ).success
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    arguments = parser.parse_args()
    names = ["esr_bench_floor", "esr_bench_job", "esr_bench_job13"]
    with benchmark_mongodb() as uri, MongoClient(uri) as client, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        seed(client, names, arguments.records)
        print(
            f"seeded {arguments.records:,} eligible records x {len(names)} databases in {time.perf_counter() - started:.1f} s"
        )
        outputs = [Path(tmp) / n for n in names]
        for path in outputs:
            path.mkdir()
        a = floor(client, names[0], outputs[0])
        b = job_runs(uri, names[1], outputs[1], single_run=True)
        b13 = job_runs(uri, names[2], outputs[2], single_run=False)
        for name in names:
            assert client[name][APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0, name
            client.drop_database(name)
    print(f"(a) floor, plain pymongo:            {a:7.2f} s  ({arguments.records / a:,.0f} records/s)")
    print(
        f"(b) job, one run over 13 partitions: {b:7.2f} s  ({arguments.records / b:,.0f} records/s)  (b)/(a) = {b / a:.2f}  (goal <= 1.5)"
    )
    print(
        f"    job, 13 one-partition runs:      {b13:7.2f} s  ({arguments.records / b13:,.0f} records/s)  ratio = {b13 / a:.2f}"
    )
    print(f"peak RSS of this process: {peak_rss_mb():.0f} MB (goal < 500 MB)")


if __name__ == "__main__":
    main()
