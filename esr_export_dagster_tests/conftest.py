"""Fixtures: a real MongoDB wire server, a database per test, an export directory, and a harness that
runs the real Dagster job against them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    FilesystemIOManager,
    SensorDefinition,
    SensorResult,
    build_sensor_context,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from pymongo import MongoClient
from pymongo.database import Database

from esr_export_dagster.alerts import AlertChannelsResource
from esr_export_dagster.definitions import build_definitions
from esr_export_dagster.delivery_ops import run_summary_of
from esr_export_dagster.delivery_resource import DeliveryResource
from esr_export_dagster.domain.esr_csv import export_file_name
from esr_export_dagster.domain.sequence import SEQUENCE_SCOPES, SHARED_SCOPE, sequence_counter_id
from esr_export_dagster.domain.streams import APP_STREAM, STREAMS
from esr_export_dagster.local.cli import LOCAL_FOLDERS
from esr_export_dagster.local.mongo_server import LocalMongoServer
from esr_export_dagster.partitions import DEANERY_TAG, export_partition_key
from esr_export_dagster.resources import (
    ExportDirectoryResource,
    ExporterResource,
    ExportPolicyResource,
    FixedClockResource,
    MongoDBResource,
    StaleRecordPolicyResource,
    WallClockResource,
)
from esr_export_dagster.sensors import stale_to_export_sensor
from esr_export_dagster.storage.collections import COUNTER
from esr_export_dagster.storage.ledger import CounterState, ExportLedger

from .delivery_servers import MotoS3, SshServer, sshd_path
from .layout import pytest_collection_modifyitems  # noqa: F401  (`make test`'s parallel layout)
from .postgres_cluster import PostgresCluster, throwaway_cluster
from .postgres_cluster import unavailable_reason as postgres_unavailable_reason
from .run_processes import RunProcess
from .seeding import RecordSeeder
from .wire_proxy import MongoFaultProxy

PROJECT_ROOT = Path(__file__).resolve().parents[1]
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ESR_TEST_MONGODB_URI when set (a real MongoDB), else the embedded stand-in on a free port."""
    configured = os.environ.get("ESR_TEST_MONGODB_URI")
    if configured:
        yield configured
        return
    with LocalMongoServer(tmp_path_factory.mktemp("mongodb")) as server:
        yield server.uri


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of the session's own, for Dagster's production storage (deploy/dagster.yaml)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with throwaway_cluster(tmp_path_factory.mktemp("postgres")) as cluster:
        yield cluster


def isolated_env(**settings: str) -> dict[str, str]:
    """This environment without any ESR_ or DAGSTER_ setting of the developer's, plus ``settings``: a
    Dagster process started by a test sees only what the test gives it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ESR_", "DAGSTER_"))}
    env.update(settings)
    return env


def run_in_new_interpreter(code: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a new interpreter on this checkout with isolated_env(**settings): what the code location
    reads or imports when it loads shows only there, as in a code server."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=isolated_env(PYTHONPATH=str(PROJECT_ROOT), **settings),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def local_folders_under(root: Path) -> dict[str, str]:
    """Every folder `make run` / `make dev` would keep in the checkout's .local/, under ``root`` instead: a
    test that starts them must not read or write the developer's own files."""
    return {variable: str(root / folder) for variable, folder in LOCAL_FOLDERS.items()}


@pytest.fixture
def database(mongo_uri: str) -> Iterator[Database]:
    name = f"esr_test_{uuid.uuid4().hex[:12]}"
    client: MongoClient = MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def fault_proxy(mongo_uri: str) -> Iterator[MongoFaultProxy]:
    from pymongo.uri_parser import parse_uri

    host, port = parse_uri(mongo_uri)["nodelist"][0]
    proxy = MongoFaultProxy(host, port).start()
    try:
        yield proxy
    finally:
        proxy.close()


@dataclass(kw_only=True)
class ExportHarness(RecordSeeder):
    """Runs the real job, as the schedule or the UI would, against this test's database and directory; the
    records it runs over are seeded with RecordSeeder's helpers (seeding.py)."""

    uri: str
    export_dir: Path
    instance: DagsterInstance
    policy: ExportPolicyResource = field(default_factory=ExportPolicyResource)
    stale_policy: StaleRecordPolicyResource = field(
        default_factory=lambda: StaleRecordPolicyResource(ui_url="http://dagster.example:3000")
    )
    alert_channels: AlertChannelsResource = field(default_factory=AlertChannelsResource)
    # The wall clock the runs read (UTC). None: each run happens at its first date's scheduled time, as the
    # schedule would have run it, when none of the records it selects has started yet.
    now: dt.datetime | None = None
    # ESR's drop; None: a local drop folder beside the export directory. ``delivery_env`` is what a run in
    # another process needs to reach the same drop.
    delivery: DeliveryResource | None = None
    delivery_env: dict[str, str] = field(default_factory=dict)

    @property
    def drop_dir(self) -> Path:
        return self.export_dir.parent / "esr-drop"

    def clock(self, run_date: dt.date | None = None) -> WallClockResource:
        if self.now is not None:
            return FixedClockResource(at=self.now.isoformat())
        return FixedClockResource.scheduled_on(run_date) if run_date is not None else WallClockResource()

    def resources(
        self, uri: str | None = None, export_dir: Path | None = None, run_date: dt.date | None = None
    ) -> dict[str, Any]:
        mongodb = MongoDBResource(uri=uri or self.uri, database=self.database.name)
        export_directory = ExportDirectoryResource(path=str(export_dir or self.export_dir))
        return {
            "mongodb": mongodb,
            "export_directory": export_directory,
            "export_policy": self.policy,
            "exporter": ExporterResource(mongodb=mongodb, export_directory=export_directory, export_policy=self.policy),
            # As in the code location: op outputs pickled under the instance's storage directory.
            "io_manager": FilesystemIOManager(),
            "stale_policy": self.stale_policy,
            "alert_channels": self.alert_channels,
            "wall_clock": self.clock(run_date),
            "delivery": self.delivery or DeliveryResource(local_folder=str(self.drop_dir)),
        }

    def definitions(
        self, uri: str | None = None, export_dir: Path | None = None, run_date: dt.date | None = None
    ) -> Definitions:
        return build_definitions(self.resources(uri, export_dir, run_date))

    def run(
        self,
        run_date: dt.date,
        deanery: str,
        *,
        uri: str | None = None,
        export_dir: Path | None = None,
        export_past_start: bool = False,
        assets: list[AssetKey] | None = None,
    ) -> ExecuteInProcessResult:
        """The stream's daily job for one partition; ``assets``: only these of its assets, as the UI's
        **Materialize selected…** runs them."""
        job = self.definitions(uri, export_dir, run_date).resolve_job_def(self.job_name)
        return job.execute_in_process(
            partition_key=export_partition_key(run_date, deanery),
            instance=self.instance,
            tags={DEANERY_TAG: deanery},
            run_config=self.run_config(export_past_start),
            raise_on_error=False,
            asset_selection=assets,
        )

    def run_range(
        self, first: dt.date, last: dt.date, first_deanery: str, last_deanery: str, *, export_past_start: bool = False
    ) -> ExecuteInProcessResult:
        """One run over the rectangle of dates × deaneries, as a single-run backfill launches it."""
        job = self.definitions(run_date=first).resolve_job_def(self.job_name)
        return job.execute_in_process(
            instance=self.instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: str(export_partition_key(first, first_deanery)),
                ASSET_PARTITION_RANGE_END_TAG: str(export_partition_key(last, last_deanery)),
            },
            run_config=self.run_config(export_past_start),
            raise_on_error=False,
        )

    def run_config(self, export_past_start: bool = False) -> dict[str, Any]:
        if not export_past_start:
            return QUIET_LOGS
        asset = self.file_asset_key.to_user_string()
        opener = f"open_{self.stream.name}_export_batches"
        return {**QUIET_LOGS, "ops": {asset: {"ops": {opener: {"config": {"export_past_start": True}}}}}}

    def run_ok(self, run_date: dt.date, deanery: str, **kwargs: Any) -> dict[str, Any]:
        result = self.run(run_date, deanery, **kwargs)
        assert result.success, failure_message(result)
        return self.summary_of(result)

    @property
    def job_name(self) -> str:
        return self.stream.job_name

    @property
    def file_asset_key(self) -> AssetKey:
        return AssetKey(self.stream.file_asset_name)

    @property
    def scope(self) -> str:
        return self.policy.scope()

    def counter_id(self, deanery: str) -> str:
        """The counter ``deanery``'s files of this stream take their numbers from, in the harness's scope."""
        return sequence_counter_id(self.stream.file_type, deanery, self.scope)

    def store_counter(self, deanery: str, **fields: Any) -> None:
        """A counter document as it would be stored for ``deanery`` in the harness's scope: ``seq`` at its top,
        ``version`` and ``openBatch`` under ``deaneries.<DEANERY>`` of the shared counter (shared scope)."""
        if self.scope != SHARED_SCOPE:
            self.database[COUNTER].insert_one({"_id": self.counter_id(deanery), **fields})
            return
        top = {name: fields.pop(name) for name in ("seq",) if name in fields}
        self.database[COUNTER].insert_one({"_id": self.counter_id(deanery), **top, "deaneries": {deanery: fields}})

    def stored_counter(self, deanery: str) -> dict[str, Any] | None:
        """The counter document as ``store_counter`` takes it: the deanery's part of the shared counter flattened."""
        document = self.database[COUNTER].find_one({"_id": self.counter_id(deanery)})
        if document is None or self.scope != SHARED_SCOPE:
            return document
        slot = document.pop("deaneries", {}).get(deanery, {})
        return {**document, **slot}

    def counter(self, deanery: str) -> CounterState:
        """That counter as the export reads it: its last number and the deanery's open batch."""
        return ExportLedger(self.database, self.stream.file_type, self.scope).read_counter(deanery)

    def assert_invariants(self, first_sequence: dict[str, int] | None = None) -> None:
        """``assert_export_invariants`` for this harness's stream and scope (``first_sequence`` by deanery)."""
        from .invariants import assert_export_invariants

        by_counter = {self.counter_id(deanery): first for deanery, first in (first_sequence or {}).items()}
        assert_export_invariants(self.database, self.export_dir, self.stream, by_counter, self.scope)

    def tick_sensor(self, sensor: SensorDefinition = stale_to_export_sensor, cursor: str | None = None) -> SensorResult:
        """One evaluation of a real sensor (the stale-record one unless told) over this harness's resources,
        at the current clock."""
        with build_sensor_context(
            cursor=cursor,
            resources=self.resources(),
            instance=self.instance,
            repository_def=self.definitions().get_repository_def(),
        ) as context:
            return sensor(context)

    def summary_of(self, result: ExecuteInProcessResult) -> dict[str, Any]:
        (summary,) = self.run_summary(result).values()
        return summary

    def run_summary(self, result: ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
        """What the run did, per partition key, as its delivery op reports it."""
        return run_summary_of(result, self.stream)

    def file_name(self, deanery: str, run_date: dt.date, sequence: int) -> str:
        return export_file_name(deanery, self.stream.file_type, run_date, sequence)

    def subprocess_env(self, uri: str | None = None) -> dict[str, str]:
        return isolated_env(
            ESR_SEQUENCE_SCOPE=self.scope,
            ESR_MONGODB_URI=uri or self.uri,
            ESR_MONGODB_DATABASE=self.database.name,
            ESR_EXPORT_DIR=str(self.export_dir),
            PYTHONPATH=str(PROJECT_ROOT),
            ESR_DELIVERY_DIR=str(self.drop_dir),
            **self.delivery_env,
        )

    def start_subprocess_run(self, run_date: dt.date, deanery: str, uri: str | None = None) -> RunProcess:
        """The job in a separate process, as a run worker would execute it (run_processes.py)."""
        return RunProcess(
            "esr_export_dagster_tests.partition_runner",
            [run_date.isoformat(), deanery, self.stream.name],
            env=self.subprocess_env(uri),
            cwd=PROJECT_ROOT,
        )


def failure_message(result: ExecuteInProcessResult) -> str:
    """Every error message of the run's failures, causes included (what the UI shows)."""
    messages = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


@pytest.fixture
def sequence_scope(request: pytest.FixtureRequest) -> str:
    """The harness's ESR_SEQUENCE_SCOPE: the default (shared) unless ``each_scope`` parametrises it."""
    return getattr(request, "param", SHARED_SCOPE)


@pytest.fixture
def harness(
    request: pytest.FixtureRequest, mongo_uri: str, database: Database, tmp_path: Path, sequence_scope: str
) -> Iterator[ExportHarness]:
    """The APP export's harness; ``each_stream`` parametrises a test over both streams, ``each_scope`` over
    both sequence scopes.

    Its Dagster instance is the test's own and keeps runs and events in memory (stored values under
    ``tmp_path``): on these 2-core machines the SQLite instance of ``instance_for_test`` spent most of a run
    syncing its event log to disk (2 runs: 2.1 s of CPU and 15-20 s under load, against 0.8 s and 3 s).
    Tests of what a persistent or production instance does use their own (test_instance_config.py,
    test_production_daemon.py)."""
    stream = getattr(request, "param", APP_STREAM)
    with DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster_home")) as instance:
        yield ExportHarness(
            uri=mongo_uri,
            database=database,
            export_dir=tmp_path / "export",
            instance=instance,
            stream=stream,
            policy=ExportPolicyResource(sequence_scope=sequence_scope),
        )


# The invariant tests that guard both exports: ``@each_stream`` runs a test once with an APP harness and
# once with a DNC harness, on the same machinery and fixtures.
each_stream = pytest.mark.parametrize("harness", STREAMS, indirect=True, ids=[s.file_type for s in STREAMS])
# The invariants that must hold whichever sequence scope a site runs: ``@each_scope`` runs a test once per scope.
each_scope = pytest.mark.parametrize("sequence_scope", SEQUENCE_SCOPES, indirect=True)


def wait_all(processes: Iterable[RunProcess], timeout: float = 180) -> list[dict[str, Any]]:
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"run failed ({process.returncode}): {err[-3000:]}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# -- delivery destinations (issue 15): real servers on loopback ports, one of each per test session --------


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 API server; real boto3 talks to it over HTTP."""
    with MotoS3.started() as server:
        yield server


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """Debian's OpenSSH sshd as its own process, throwaway keys, on a free port; stopped at the end."""
    if sshd_path() is None:
        if os.geteuid() != 0:
            pytest.skip(
                "OpenSSH's sshd is not installed and this is not root to install it (`make test` does, as root)"
            )
        subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-server"], check=True, capture_output=True)
    with SshServer.started(tmp_path_factory.mktemp("sshd")) as server:
        yield server
