"""Shared set-up for the benchmarks: a MongoDB to measure against, and bulk synthetic records."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import tempfile
from typing import Iterator

from bson import ObjectId

from esr_export_dagster.local.mongo_server import LocalMongoServer


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
