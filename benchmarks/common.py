"""Shared set-up for the benchmarks: a MongoDB to measure against, bulk synthetic records, the project's jobs
pointed at a benchmark's database, the plain-pymongo floor, and pairs of floor and export timed in turn."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bson import ObjectId
from dagster import DagsterInstance, JobDefinition
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pymongo import MongoClient
from pymongo.collection import Collection

from esr_export_dagster.definitions import build_definitions, default_resources
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.local.mongo_server import LocalMongoServer
from esr_export_dagster.partitions import DEANERY_TAG, export_partition_key
from esr_export_dagster.resources import FixedClockResource
from esr_export_dagster.storage.collections import APP_RECORDS, ensure_indexes

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
APP_JOB = "daily_app_export_job"


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


def reset_peak_rss() -> None:
    """Starts the process's high-water mark of resident memory again from its current size (Linux), so that
    the peak read afterwards is the export's, not the seeding's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def current_peak_rss_mb() -> float:
    """The high-water mark since the last reset_peak_rss (the whole process's life where it cannot be reset)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mb()


@contextlib.contextmanager
def export_settings(uri: str, database: str, export_dir: Path) -> Iterator[None]:
    """The code location's settings (ESR_MONGODB_URI, ...) pointed at one benchmark database and its folders,
    for the runs made inside: the resources read them when a run starts, as in production."""
    drop = export_dir.parent / f"{export_dir.name}-drop"
    if export_dir.is_dir():
        drop.mkdir(exist_ok=True)
    settings = {
        "ESR_MONGODB_URI": uri,
        "ESR_MONGODB_DATABASE": database,
        "ESR_EXPORT_DIR": str(export_dir),
        "ESR_DELIVERY_DIR": str(drop),
    }
    previous = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def export_job(first_run_date: dt.date, job_name: str = APP_JOB) -> JobDefinition:
    """The code location's job with its own resources (read from the settings, see export_settings) and the
    clock of the replayed first day, when none of the records has started yet."""
    with export_settings("mongodb://unused", "unused", Path(tempfile.gettempdir()) / "esr-bench-unused"):
        # Built with every setting present, so that each resource field is the setting's EnvVar, read per run.
        resources = {**default_resources(), "wall_clock": FixedClockResource.scheduled_on(first_run_date)}
        return build_definitions(resources).resolve_job_def(job_name)


def range_tags(first_partition: str, last_partition: str) -> dict[str, str]:
    """The tags a single-run backfill puts on its run: the date × deanery rectangle it covers."""
    return {ASSET_PARTITION_RANGE_START_TAG: first_partition, ASSET_PARTITION_RANGE_END_TAG: last_partition}


def scheduled_runs(job: JobDefinition, instance: DagsterInstance, run_date: dt.date, deaneries: Sequence[str]) -> None:
    """One one-partition run per deanery, tagged as the daily schedule tags them."""
    for deanery in deaneries:
        result = job.execute_in_process(
            instance=instance,
            run_config=QUIET_LOGS,
            partition_key=export_partition_key(run_date, deanery),
            tags={DEANERY_TAG: deanery},
        )
        assert result.success, deanery


def single_run(
    job: JobDefinition, instance: DagsterInstance, first: dt.date, last: dt.date, deaneries: Sequence[str]
) -> None:
    """One run over the date × deanery rectangle, as a single-run backfill launches it."""
    first_key, last_key = (str(export_partition_key(d, n)) for d, n in ((first, deaneries[0]), (last, deaneries[-1])))
    result = job.execute_in_process(instance=instance, run_config=QUIET_LOGS, tags=range_tags(first_key, last_key))
    assert result.success


def window_query(deanery: str, run_date: dt.date) -> dict:
    """The eligible records of one deanery-day: TO_EXPORT, starting in [run date + 2 days, run date + 13 weeks)."""
    return {
        "deanery": deanery,
        "status": TO_EXPORT,
        "startDate": {
            "$gte": dt.datetime.combine(run_date + dt.timedelta(days=2), dt.time.min),
            "$lt": dt.datetime.combine(run_date + dt.timedelta(weeks=13), dt.time.min),
        },
    }


def floor_partition(collection: Collection, deanery: str, run_date: dt.date, out: Path) -> int:
    """The least any exporter must do for one deanery-day: one query for its eligible records, one CSV file
    written and fsynced, one bulk update marking them; no plan, no ledger, no checks, no Dagster."""
    ids = []
    file_name = f"DE_{deanery}_APP_{run_date:%Y%m%d}_00000001.DAT"
    with (out / file_name).open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
        for document in collection.find(window_query(deanery, run_date)):
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
        handle.flush()
        os.fsync(handle.fileno())
    if ids:
        collection.update_many({"_id": {"$in": ids}}, {"$set": {"status": EXPORTED, "exportedFileName": file_name}})
    return len(ids)


SEED_BATCH = 10_000


def seed_databases(client: MongoClient, names: Sequence[str], batches: Iterable[Sequence[dict]]) -> None:
    """The same applicant records, ids included, into each database of ``names`` (dropped first, with the
    export's indexes), one batch at a time: a batch is inserted into every database before the next is built."""
    for name in names:
        client.drop_database(name)
        ensure_indexes(client[name])
    for batch in batches:
        for name in names:
            client[name][APP_RECORDS].insert_many(batch, ordered=False)


def in_batches(records: Sequence[dict]) -> Iterator[Sequence[dict]]:
    return (records[start : start + SEED_BATCH] for start in range(0, len(records), SEED_BATCH))


@dataclass(frozen=True)
class PairCopies:
    """Where pair ``n``'s floor and export run: a database and a folder each, the databases seeded with
    identical records; only one pair's databases exist at a time."""

    client: MongoClient
    root: Path
    prefix: str

    def databases(self, n: int) -> tuple[str, str]:
        """The floor's and the export's database of pair ``n``."""
        return f"{self.prefix}_floor_{n}", f"{self.prefix}_export_{n}"

    def folder(self, database: str) -> Path:
        path = self.root / database
        path.mkdir(exist_ok=True)
        return path

    def prepare(self, n: int, batches: Iterable[Sequence[dict]]) -> None:
        """Drop the previous pair's databases and fill this pair's with the same records."""
        if n:
            self.drop(n - 1)
        seed_databases(self.client, self.databases(n), batches)

    def drop(self, n: int) -> None:
        for name in self.databases(n):
            self.client.drop_database(name)


def timed(action: Callable[[int], object], n: int) -> float:
    started = time.perf_counter()
    action(n)
    return time.perf_counter() - started


def alternate_pairs(
    pairs: int, prepare: Callable[[int], None], floor: Callable[[int], None], export: Callable[[int], None]
) -> list[tuple[float, float]]:
    """Times ``pairs`` pairs of (floor, export), each pair on freshly prepared identical data, the floor first
    in even pairs and the export first in odd ones, so that a change in the machine's load falls on both."""
    results = []
    for n in range(pairs):
        prepare(n)
        if n % 2 == 0:
            floor_time = timed(floor, n)
            export_time = timed(export, n)
        else:
            export_time = timed(export, n)
            floor_time = timed(floor, n)
        print(
            f"  pair {n + 1}: floor {floor_time:7.2f} s, export {export_time:7.2f} s, ratio {export_time / floor_time:.2f}",
            flush=True,
        )
        results.append((floor_time, export_time))
    return results


def median_ratio(results: Sequence[tuple[float, float]]) -> float:
    return statistics.median(export / floor for floor, export in results)


def summary(label: str, results: Sequence[tuple[float, float]]) -> str:
    floors = [f for f, _ in results]
    exports = [e for _, e in results]
    ratios = sorted(e / f for f, e in results)
    return (
        f"{label}: floor median {statistics.median(floors):.2f} s, export median {statistics.median(exports):.2f} s, "
        f"ratio median {median_ratio(results):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
