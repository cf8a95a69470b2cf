"""The production set-up on one machine: deploy/dagster.yaml over PostgreSQL, `dagster-daemon run` ticking
the export schedule for real, run workers started through the code server, MongoDB over the wire.

Each scenario gets its own Dagster database, DAGSTER_HOME, MongoDB database, export directory and daemon
(the code location reads its ESR_* settings from the daemon's environment); the PostgreSQL cluster and the
MongoDB server are shared. Whatever the fault, every scenario ends with the invariants: every seeded record
in exactly one file, and per deanery gap-free sequence numbers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.partitions import DEANERY_TAG
from esr_export_dagster.storage.collections import APP_RECORDS
from dagster import DagsterRunStatus

from .invariants import assert_export_invariants, file_placements, files_on_disk
from .postgres_cluster import PostgresCluster
from .production_stack import ProductionStack, latest_by_deanery, most_in_flight, roots

pytestmark = pytest.mark.integration

RECORDS_PER_DEANERY = 3


class Scenario:
    """One stack and its MongoDB database, seeded with a few eligible records per deanery."""

    def __init__(self, stack: ProductionStack, database: Database) -> None:
        self.stack = stack
        self.database = database
        # Eligible on the tick's day whether it falls today or, just after midnight UTC, tomorrow.
        today = dt.datetime.now(dt.timezone.utc).date()
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
        assert_export_invariants(self.database, self.stack.export_dir, first_sequence={d: 1 for d in DEANERIES})


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


def assert_all_deaneries_exported_within_the_instance_limits(scenario: Scenario) -> list:
    stack = scenario.stack
    records = stack.wait_until_settled(expected_runs=len(DEANERIES))
    requested = roots(records)
    assert sorted(r.dagster_run.tags[DEANERY_TAG] for r in requested) == sorted(DEANERIES)
    for record in records:
        assert stack.was_enqueued(record.dagster_run.run_id), "a run bypassed the daemon's run queue"
    latest = latest_by_deanery(records)
    failed = {d: stack.failure_messages(r.dagster_run.run_id) for d, r in latest.items() if r.dagster_run.status != DagsterRunStatus.SUCCESS}
    assert not failed, f"{failed}\n{stack.log_tail()}"

    intervals = [(r.start_time, r.end_time) for r in records if r.start_time is not None]
    assert len(intervals) == len(records), "a run finished without ever starting"
    assert most_in_flight(intervals) <= stack.max_concurrent_runs
    for deanery in DEANERIES:
        of_deanery = [(r.start_time, r.end_time) for r in records if r.dagster_run.tags[DEANERY_TAG] == deanery]
        assert most_in_flight(of_deanery) == 1, f"{deanery} had two runs in flight at once"
    scenario.assert_everything_exported_once()
    return records


def test_the_daemon_ticks_the_schedule_and_exports_every_deanery_within_the_run_limits(scenario):
    scenario.stack.start_daemon()

    records = assert_all_deaneries_exported_within_the_instance_limits(scenario)

    assert len(records) == len(DEANERIES), "a run was retried although nothing failed"
