"""How long one tick of stale_to_export_sensor takes over 1,000,000 records (goal: under 1 s).

Run: .venv/bin/python -m benchmarks.sensor_benchmark [--records N]
Seeds N records (99.9 % EXPORTED, the rest TO_EXPORT and spread over the window, some stuck) into the
embedded stand-in (or ESR_BENCH_MONGODB_URI), then evaluates the real sensor several times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from dagster import DagsterInstance, build_sensor_context
from pymongo import MongoClient

from esr_export_dagster.alerts import AlertChannelsResource
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.resources import ExportPolicyResource, MongoDBResource, StaleRecordPolicyResource
from esr_export_dagster.sensors import stale_to_export_sensor
from esr_export_dagster.storage.collections import APP_RECORDS, ensure_indexes

from .common import benchmark_mongodb, lean_record, peak_rss_mb

DATABASE = "esr_sensor_benchmark"


def seed(uri: str, total: int) -> int:
    today = dt.datetime.now(dt.UTC).date()
    with MongoClient(uri) as client:
        client.drop_database(DATABASE)
        database = client[DATABASE]
        ensure_indexes(database)
        batch, pending = [], 0
        for placement in range(total):
            deanery = DEANERIES[placement % len(DEANERIES)]
            if placement % 1000 == 0:
                start, status = today + dt.timedelta(days=placement % 120 - 10), TO_EXPORT
                pending += 1
            else:
                start, status = today - dt.timedelta(days=placement % 900), EXPORTED
            batch.append(lean_record(placement + 1, deanery, start, status))
            if len(batch) == 10_000:
                database[APP_RECORDS].insert_many(batch, ordered=False)
                batch = []
        if batch:
            database[APP_RECORDS].insert_many(batch, ordered=False)
    return pending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=5)
    arguments = parser.parse_args()
    with benchmark_mongodb() as uri:
        started = time.perf_counter()
        pending = seed(uri, arguments.records)
        print(f"seeded {arguments.records:,} records ({pending:,} TO_EXPORT) in {time.perf_counter() - started:.1f} s")
        resources = {
            "mongodb": MongoDBResource(uri=uri, database=DATABASE),
            "export_policy": ExportPolicyResource(),
            "stale_policy": StaleRecordPolicyResource(),
            "alert_channels": AlertChannelsResource(),
        }
        durations = []
        cursor = None
        with DagsterInstance.ephemeral() as instance:
            for _ in range(arguments.ticks):
                with build_sensor_context(cursor=cursor, resources=resources, instance=instance) as context:
                    started = time.perf_counter()
                    result = stale_to_export_sensor(context)
                    durations.append(time.perf_counter() - started)
                cursor = result.cursor
        print(
            f"sensor tick over {arguments.records:,} records: median {statistics.median(durations):.3f} s, "
            f"min {min(durations):.3f} s, max {max(durations):.3f} s ({arguments.ticks} ticks; goal < 1 s)"
        )
        print(f"run requests on the last tick: {len(result.run_requests or [])}; peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
