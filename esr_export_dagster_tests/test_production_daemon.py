"""The production set-up on one machine: deploy/dagster.yaml over PostgreSQL, `dagster-daemon run` ticking
the export schedule for real, run workers started through the code server, MongoDB over the wire.

Each scenario gets its own Dagster database, DAGSTER_HOME, MongoDB database, export directory and daemon
(the code location reads its ESR_* settings from the daemon's environment); the PostgreSQL cluster and the
MongoDB server are shared. Whatever the fault, every scenario ends with the invariants: every seeded record
in exactly one file, and per deanery gap-free sequence numbers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.events import RunFailureReason
from dagster._core.storage.tags import AUTO_RETRY_RUN_ID_TAG, RUN_FAILURE_REASON_TAG
from pymongo import MongoClient
from pymongo.database import Database

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.esr_csv import parse_export_file_name
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.local.mongo_server import LocalMongoServer
from esr_export_dagster.partitions import DEANERY_TAG
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER

from . import kill_points
from .conftest import ExportHarness
from .invariants import assert_export_invariants, file_placements, files_on_disk
from .postgres_cluster import PostgresCluster
from .production_stack import ProductionStack, kill_process_tree, latest_by_deanery, most_in_flight, roots
from .wire_proxy import MongoFaultProxy, Rule

pytestmark = pytest.mark.integration

RECORDS_PER_DEANERY = 3


class Scenario:
    """One stack and its MongoDB database, seeded with a few eligible records per deanery."""

    def __init__(self, stack: ProductionStack, database: Database) -> None:
        self.stack = stack
        self.database = database
        # Eligible on the tick's day whether it falls today or, just after midnight UTC, tomorrow.
        today = dt.datetime.now(dt.UTC).date()
        placements = iter(range(800_000, 900_000))
        self.seeded = [
            applicant_record(next(placements), deanery, today + dt.timedelta(days=5 + n))
            for deanery in DEANERIES
            for n in range(RECORDS_PER_DEANERY)
        ]
        database[APP_RECORDS].insert_many(self.seeded)

    def assert_everything_exported_once(self) -> None:
        on_disk = [p for path in files_on_disk(self.stack.export_dir).values() for p in file_placements(path)]
        assert sorted(on_disk) == sorted(r["placementId"] for r in self.seeded)
        assert self.database[APP_RECORDS].count_documents({"status": EXPORTED}) == len(self.seeded)
        assert self.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
        # One contiguous run from 1 on the shared APP counter, whatever order the deaneries took their numbers in.
        assert_export_invariants(self.database, self.stack.export_dir, first_sequence={"APP": 1})


@pytest.fixture
def scenario_factory(postgres_cluster: PostgresCluster, mongo_uri: str, tmp_path: Path) -> Iterator:
    created: list[tuple[ProductionStack, MongoClient, str]] = []

    def make(uri: str | None = None, seed_uri: str | None = None) -> Scenario:
        """A stack whose runs reach MongoDB at ``uri`` (a fault proxy, say), seeded directly."""
        name = f"esr_daemon_{uuid.uuid4().hex[:10]}"
        client: MongoClient = MongoClient(seed_uri or mongo_uri, serverSelectionTimeoutMS=5000)
        stack = ProductionStack(tmp_path / f"stack{len(created)}", postgres_cluster, uri or mongo_uri, name)
        created.append((stack, client, name))
        return Scenario(stack, client[name])

    try:
        yield make
    finally:
        for stack, client, name in created:
            stack.stop()
            try:
                client.drop_database(name)
            finally:
                client.close()


@pytest.fixture
def scenario(scenario_factory) -> Scenario:
    return scenario_factory()


def assert_all_deaneries_exported_within_the_instance_limits(
    scenario: Scenario, launches_cut_off: bool = False
) -> list:
    """``launches_cut_off``: the daemon may have died between marking a run STARTING and handing it to the
    code server; run monitoring must then fail it for its start timeout and the run retry do its work."""
    stack = scenario.stack
    records = stack.wait_until_settled(expected_runs=len(DEANERIES))
    requested = roots(records)
    assert sorted(r.dagster_run.tags[DEANERY_TAG] for r in requested) == sorted(DEANERIES)
    for record in records:
        assert stack.was_enqueued(record.dagster_run.run_id), "a run bypassed the daemon's run queue"
    latest = latest_by_deanery(records)
    failed = {
        deanery: stack.failure_messages(record.dagster_run.run_id)
        for deanery, record in latest.items()
        if record.dagster_run.status != DagsterRunStatus.SUCCESS
    }
    assert not failed, f"{failed}\n{stack.log_tail()}"

    started = [r for r in records if r.start_time is not None]
    never_started = [r for r in records if r.start_time is None]
    if never_started:
        assert launches_cut_off, "a run finished without ever starting"
    ids = {r.dagster_run.run_id for r in records}
    for record in never_started:
        run = record.dagster_run
        assert run.status == DagsterRunStatus.FAILURE
        assert run.tags.get(RUN_FAILURE_REASON_TAG) == RunFailureReason.START_TIMEOUT.value, stack.failure_messages(
            run.run_id
        )
        assert run.tags.get(AUTO_RETRY_RUN_ID_TAG) in ids, "a run cut off while launching was not retried"

    # A run that never started ran nothing, so only the started ones count towards the limits.
    intervals = [(r.start_time, r.end_time) for r in started]
    assert most_in_flight(intervals) <= stack.max_concurrent_runs
    for deanery in DEANERIES:
        of_deanery = [(r.start_time, r.end_time) for r in started if r.dagster_run.tags[DEANERY_TAG] == deanery]
        assert most_in_flight(of_deanery) == 1, f"{deanery} had two runs in flight at once"
    scenario.assert_everything_exported_once()
    return records


def test_the_daemon_ticks_the_schedule_and_exports_every_deanery_within_the_run_limits(scenario):
    scenario.stack.start_daemon()

    records = assert_all_deaneries_exported_within_the_instance_limits(scenario)

    assert len(records) == len(DEANERIES), "a run was retried although nothing failed"


def of_deanery(records: list, deanery: str) -> list:
    return sorted((r for r in records if r.dagster_run.tags[DEANERY_TAG] == deanery), key=lambda r: r.create_timestamp)


@pytest.fixture
def restartable_mongo(tmp_path: Path) -> Iterator[LocalMongoServer]:
    """A stand-in of this test's own, to stop and restart on the same data and port (the shared one may be
    a real MongoDB, and other tests use it). Requested before scenario_factory, so it outlives its clean-up."""
    server = LocalMongoServer(tmp_path / "mongodb").start()
    try:
        yield server
    finally:
        server.stop()


def test_mongodb_stopped_mid_run_and_restarted_seconds_later_is_ridden_out_by_the_retry_policies(
    restartable_mongo, scenario_factory
):
    # The proxy only pins the moment: one deanery's run is taking its sequence numbers when MongoDB stops.
    proxy = MongoFaultProxy("127.0.0.1", restartable_mongo.port).start()
    try:
        scenario = scenario_factory(uri=proxy.uri, seed_uri=restartable_mongo.uri)
        held = proxy.add(Rule(kill_points.numbers_batch, "hold"))
        scenario.stack.start_daemon()
        kill_points.wait_until_reached(held, lambda: scenario.stack.tick_over(len(DEANERIES)), timeout=240)

        restartable_mongo.stop()
        proxy.clear()  # the held command is never delivered: its connection drops, as the server's would
        time.sleep(4)
        restartable_mongo.start()

        assert_all_deaneries_exported_within_the_instance_limits(scenario)
    finally:
        proxy.close()


def test_a_run_worker_killed_mid_export_is_retried_by_the_instance_and_its_file_finished_once(
    scenario_factory, fault_proxy
):
    scenario = scenario_factory(uri=fault_proxy.uri)
    stack = scenario.stack
    # KSS's file is on disk and its records marked; only closing the batch is left when the worker dies.
    held = fault_proxy.add(Rule(lambda c: kill_points.closes_batch(c) and kill_points.of_deanery(c, "KSS"), "hold"))
    stack.start_daemon()
    kill_points.wait_until_reached(held, lambda: stack.tick_over(len(DEANERIES)), timeout=240)
    (running,) = [
        r
        for r in stack.schedule_runs()
        if r.dagster_run.tags[DEANERY_TAG] == "KSS" and r.dagster_run.status == DagsterRunStatus.STARTED
    ]

    kill_process_tree(stack.run_worker_pid(running.dagster_run.run_id))
    fault_proxy.clear()

    records = assert_all_deaneries_exported_within_the_instance_limits(scenario)
    killed, retry = of_deanery(records, "KSS")
    assert killed.dagster_run.status == DagsterRunStatus.FAILURE
    assert retry.dagster_run.parent_run_id == killed.dagster_run.run_id
    assert retry.dagster_run.status == DagsterRunStatus.SUCCESS
    assert len(files_on_disk(stack.export_dir, "KSS")) == 1


def test_the_daemon_killed_and_restarted_while_the_runs_are_in_progress_loses_and_repeats_nothing(scenario):
    stack = scenario.stack
    stack.start_daemon()
    stack.wait_for(
        lambda rs: (
            len(rs) >= len(DEANERIES)
            and any(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in rs)
            and any(r.dagster_run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.STARTED) for r in rs)
        ),
        "the first runs finished while others are queued or running",
        timeout=240,
    )

    stack.kill_daemon()
    time.sleep(2)
    stack.start_daemon()

    records = assert_all_deaneries_exported_within_the_instance_limits(scenario, launches_cut_off=True)
    assert len(roots(records)) == len(DEANERIES), "the restarted daemon requested the tick's runs again"


def test_write_conflicts_and_lost_connections_on_the_counter_are_retried_by_the_op_within_each_run(
    scenario_factory, fault_proxy
):
    scenario = scenario_factory(uri=fault_proxy.uri)
    conflicts = fault_proxy.add(Rule(kill_points.numbers_batch, "write_conflict", times=2, per_shape=True))
    reconnects = fault_proxy.add(Rule(kill_points.numbers_batch, "drop_before", times=1, per_shape=True))
    scenario.stack.start_daemon()

    records = assert_all_deaneries_exported_within_the_instance_limits(scenario)

    assert conflicts.applied == 2 * len(DEANERIES)
    assert reconnects.applied == len(DEANERIES)
    assert len(records) == len(DEANERIES), "the op's retry policy, not a run retry, must absorb these"
    # All of it on the one shared counter: one contiguous run 1..13, one file per deanery.
    files = [parse_export_file_name(name) for name in files_on_disk(scenario.stack.export_dir)]
    assert sorted(file.sequence for file in files) == list(range(1, len(DEANERIES) + 1))
    assert sorted(file.deanery for file in files) == sorted(DEANERIES)
    assert scenario.database[COUNTER].find_one({"_id": "APP"})["seq"] == len(DEANERIES)


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[None]:
    """A real file system with real limits: read-only, or a few kilobytes."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"this sandbox does not allow mounting a tmpfs: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def assert_every_run_failed_saying(stack: ProductionStack, text: str) -> list:
    records = stack.wait_until_settled(expected_runs=len(DEANERIES))
    assert len(records) == len(DEANERIES), "a run failing on the export directory was retried"
    for record in records:
        assert record.dagster_run.status == DagsterRunStatus.FAILURE
        assert text in stack.failure_messages(record.dagster_run.run_id)
    return records


def export_what_is_left(scenario: Scenario, records: list) -> None:
    """The next run of each deanery, once the directory is fixed (as re-materializing the partition does)."""
    harness = ExportHarness(
        uri=scenario.stack.env["ESR_MONGODB_URI"],
        database=scenario.database,
        export_dir=scenario.stack.export_dir,
        instance=DagsterInstance.ephemeral(),
    )
    for record in records:
        run_date = dt.date.fromisoformat(record.dagster_run.tags["dagster/partition/date"])
        harness.run_ok(run_date, record.dagster_run.tags[DEANERY_TAG])


def test_a_read_only_export_directory_fails_every_run_before_any_number_is_taken(scenario):
    stack = scenario.stack
    if os.geteuid() == 0:  # root writes through permission bits: only a read-only mount stops it
        context = tmpfs(stack.export_dir, "ro,size=1m")
    else:
        stack.export_dir.mkdir(mode=0o500)
        context = contextlib.nullcontext()
    with context:
        stack.start_daemon()
        records = assert_every_run_failed_saying(stack, "is not writable")
        assert "No sequence number was taken" in stack.failure_messages(records[0].dagster_run.run_id)
        assert scenario.database[APP_RECORDS].count_documents({"status": EXPORTED}) == 0
        assert scenario.database[COUNTER].count_documents({"seq": {"$gt": 0}}) == 0
        stack.stop()
    if os.geteuid() != 0:
        stack.export_dir.chmod(0o700)

    export_what_is_left(scenario, records)
    scenario.assert_everything_exported_once()


def test_a_full_export_disk_fails_every_run_and_the_next_run_writes_the_same_numbers(scenario):
    stack = scenario.stack
    with tmpfs(stack.export_dir, "size=256k"):
        filler = stack.export_dir / "filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):  # until ENOSPC
                while True:
                    os.write(descriptor, b"\0" * 4096)
        finally:
            os.close(descriptor)
        stack.start_daemon()
        records = assert_every_run_failed_saying(stack, "No space left on device (ENOSPC)")
        assert scenario.database[APP_RECORDS].count_documents({"status": EXPORTED}) == 0
        assert files_on_disk(stack.export_dir) == {}
        stack.stop()

        filler.unlink()
        export_what_is_left(scenario, records)
        scenario.assert_everything_exported_once()
