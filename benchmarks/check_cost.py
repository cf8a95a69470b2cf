"""What ``files_match_records`` costs per file as the records collection grows (issue 17, item 4).

Run: PYTHONPATH=. .venv/bin/python -m benchmarks.check_cost [--records 200000] [--files 13]
Seeds EXPORTED records in files of 300 (a day of 13 deaneries is 13 such files) into the embedded stand-in
(or ESR_BENCH_MONGODB_URI), with the export's own indexes, and at a quarter of the size and at the full
size times, for the same day's files:
  before: the query the check made until now, ``distinct`` of the business id over the whole collection
          per file (and, for several files, one ``$in`` over their names);
  after:  ``references_marked_with``, an equality on ``exportedFileName`` that its index serves, grouped
          by status on the server so that only the ids come back;
  and, for comparison, a ``find`` with the same equality, which decodes every whole record.
Both must return the same ids. Prints the figures; nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable

from pymongo import MongoClient
from pymongo.database import Database

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.esr_csv import export_file_name
from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.storage.check_queries import references_marked_with
from esr_export_dagster.storage.collections import APP_RECORDS, ensure_indexes

from .common import benchmark_mongodb, lean_record

DATABASE = "esr_check_cost_benchmark"
PER_FILE = 300
FIRST_DAY = dt.date(2020, 1, 1)
REPEATS = 3


def file_name(index: int) -> str:
    """The ``index``-th file of the history: one per deanery per day, in order."""
    day, deanery = divmod(index, len(DEANERIES))
    return export_file_name(DEANERIES[deanery], "APP", FIRST_DAY + dt.timedelta(days=day), day + 1)


def seed(database: Database, first_record: int, last_record: int) -> None:
    batch = []
    for placement in range(first_record, last_record):
        record = lean_record(placement + 1, DEANERIES[placement // PER_FILE % len(DEANERIES)], FIRST_DAY, EXPORTED)
        record["exportedFileName"] = file_name(placement // PER_FILE)
        batch.append(record)
        if len(batch) == 10_000:
            database[APP_RECORDS].insert_many(batch, ordered=False)
            batch = []
    if batch:
        database[APP_RECORDS].insert_many(batch, ordered=False)


def before_per_file(database: Database, names: list[str]) -> dict[str, list[int]]:
    """The check's query until now, one file at a time (the daily run)."""
    return {
        name: database[APP_RECORDS].distinct("placementId", {"exportedFileName": name, "status": EXPORTED})
        for name in names
    }


def before_in_one_query(database: Database, names: list[str]) -> dict[str, list[int]]:
    """The check's query until now for several files (a backfill): one ``$in``, which the stand-in scans."""
    marked: dict[str, list[int]] = {name: [] for name in names}
    for record in (
        database[APP_RECORDS]
        .find({"exportedFileName": {"$in": names}}, {"placementId": 1, "exportedFileName": 1, "status": 1})
        .batch_size(5000)
    ):
        if record.get("status") == EXPORTED:
            marked[record["exportedFileName"]].append(record["placementId"])
    return marked


def find_per_file(database: Database, names: list[str]) -> dict[str, list[int]]:
    """The same equality as ``after`` through ``find``: the stand-in decodes each whole record to project it."""
    return {
        name: [
            record["placementId"]
            for record in database[APP_RECORDS].find({"exportedFileName": name}, {"placementId": 1, "status": 1})
            if record.get("status") == EXPORTED
        ]
        for name in names
    }


def after(database: Database, names: list[str]) -> dict[str, list[int]]:
    return {name: references_marked_with(database, APP_STREAM, name) for name in names}


def timed(query: Callable[[Database, list[str]], dict[str, list[int]]], database: Database, names: list[str]):
    durations, result = [], {}
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = query(database, names)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations), {name: sorted(ids) for name, ids in result.items()}


def measure(database: Database, stored: int, names: list[str]) -> None:
    print(f"\n{stored:,} records stored; the day's {len(names)} file(s) of {PER_FILE} records each:")
    figures = {}
    results = []
    for label, query in (
        ("before: distinct per file", before_per_file),
        ("before: one $in over the names", before_in_one_query),
        ("find: exportedFileName equality per file", find_per_file),
        ("after: references_marked_with per file", after),
    ):
        seconds, result = timed(query, database, names)
        figures[label] = seconds
        results.append(result)
        print(f"  {label:<45} {seconds:8.3f} s  ({seconds / len(names) * 1000:7.1f} ms per file)")
    if not all(result == results[0] for result in results):
        raise SystemExit("the queries disagree: the benchmark's figures mean nothing")
    after_seconds = figures["after: references_marked_with per file"]
    print(f"  distinct per file / after: {figures['before: distinct per file'] / after_seconds:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=len(DEANERIES), help="the day's files (13: every deanery)")
    arguments = parser.parse_args()
    sizes = [arguments.records // 4, arguments.records]
    with benchmark_mongodb() as uri, MongoClient(uri) as client:
        client.drop_database(DATABASE)
        database = client[DATABASE]
        ensure_indexes(database, APP_STREAM)
        seeded = 0
        for size in sizes:
            started = time.perf_counter()
            seed(database, seeded, size)
            seeded = size
            print(f"seeded up to {size:,} records in {time.perf_counter() - started:.1f} s")
            # The newest files: the day just exported, whatever the history before it.
            last_file = size // PER_FILE - 1
            names = [file_name(index) for index in range(last_file - arguments.files + 1, last_file + 1)]
            measure(database, size, names)
        client.drop_database(DATABASE)


if __name__ == "__main__":
    main()
