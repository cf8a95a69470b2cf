"""Shared set-up for the benchmarks: a MongoDB to measure against, and bulk synthetic records."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import tempfile
from collections.abc import Iterator

from bson import ObjectId
from dagster import JobDefinition
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from esr_export_dagster.definitions import build_definitions
from esr_export_dagster.local.mongo_server import LocalMongoServer
from esr_export_dagster.resources import (
    ExportDirectoryResource,
    ExporterResource,
    ExportPolicyResource,
    FixedClockResource,
    MongoDBResource,
)

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@contextlib.contextmanager
def benchmark_mongodb() -> Iterator[str]:
    """ESR_BENCH_MONGODB_URI if set, else a fresh embedded stand-in in a temporary directory."""
    configured = os.environ.get("ESR_BENCH_MONGODB_URI")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="esr-bench-") as data_dir:
        with LocalMongoServer(data_dir) as server:
            yield server.uri


def lean_record(placement_id: int, deanery: str, start: dt.date, status: str) -> dict:
    """A record with the scheduling fields only: what the sensor reads (payload size does not matter to it)."""
    return {
        "_id": ObjectId(),
        "placementId": placement_id,
        "deanery": deanery,
        "status": status,
        "startDate": dt.datetime.combine(start, dt.time.min),
        "deaneryPostNumber": f"{deanery}/RGT00/{placement_id % 97:03d}/FY1/{placement_id % 13:03d}",
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_job(uri: str, database: str, export_dir: str, first_run_date: dt.date) -> JobDefinition:
    """The project's job, with the code location's own resources pointed at the benchmark's database, and
    the clock of the replayed first day, when none of the records has started yet."""
    mongodb = MongoDBResource(uri=uri, database=database)
    export_directory = ExportDirectoryResource(path=export_dir)
    export_policy = ExportPolicyResource()
    return build_definitions(
        {
            "mongodb": mongodb,
            "export_directory": export_directory,
            "export_policy": export_policy,
            "exporter": ExporterResource(
                mongodb=mongodb, export_directory=export_directory, export_policy=export_policy
            ),
            "wall_clock": FixedClockResource.scheduled_on(first_run_date),
        }
    ).resolve_job_def("daily_app_export_job")


def range_tags(first_partition: str, last_partition: str) -> dict[str, str]:
    """The tags a single-run backfill puts on its run: the date × deanery rectangle it covers."""
    return {ASSET_PARTITION_RANGE_START_TAG: first_partition, ASSET_PARTITION_RANGE_END_TAG: last_partition}
