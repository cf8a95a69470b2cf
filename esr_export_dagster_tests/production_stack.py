"""The production set-up on one machine: Dagster's instance from deploy/dagster.yaml over a throwaway
PostgreSQL, `dagster-daemon run` on a workspace file (the daemon starts the code server, which starts the
run workers), all real processes, in one process group per daemon so that nothing outlives a test."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from unittest import mock

import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.dagster_run import RunRecord
from dagster._core.storage.tags import AUTO_RETRY_RUN_ID_TAG, SCHEDULE_NAME_TAG, WILL_RETRY_TAG

from esr_export_dagster.local.cli import stop_process_group
from esr_export_dagster.partitions import DEANERY_TAG

from .conftest import PROJECT_ROOT, isolated_env
from .daemon_location import TEST_SCHEDULE_CRON_FILE_VARIABLE, TEST_SCHEDULE_NAME
from .postgres_cluster import PostgresCluster

DEPLOY_CONFIG = PROJECT_ROOT / "deploy" / "dagster.yaml"
# The only keys in which the tests' instance differs from deploy/dagster.yaml, all of them about time: a
# killed worker or a half-launched run must be noticed within a test's patience instead of 30 s / 3 min, and
# queued runs are launched from 4 threads, checked every second, instead of one at a time every 5 s. (A
# launch waits until the run worker's new interpreter has imported Dagster and the project: on the 2-core
# machines 13 launches one after another made most of a scenario's 4-5 minutes.) Every policy (storage, run
# and tag limits, pools, run retries, run monitoring, retention) stays as deployed. The start timeout leaves
# room for 4 run workers starting at once on a loaded machine, which took over a minute.
TIMING_OVERRIDES = {
    "run_monitoring": {"poll_interval_seconds": 2, "start_timeout_seconds": 120},
    "run_coordinator": {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {"dequeue_interval_seconds": 1, "dequeue_use_threads": True, "dequeue_num_workers": 4},
    },
}
# A launch is a request to the code server that lasts until the run worker has started; Dagster gives up on
# it after 60 s unless told otherwise (DAGSTER_GRPC_TIMEOUT_SECONDS), which 4 launches at once on a loaded
# machine exceeded. As long as the start timeout: a launch still waiting then has failed anyway.
LAUNCH_TIMEOUT_ENV = {"DAGSTER_GRPC_TIMEOUT_SECONDS": "120"}
# How often the test reads the runs from PostgreSQL while it waits: each read is a new connection and a
# query over every run record of the tick.
RUN_POLL_SECONDS = 1.0
# How long a tick's 13 runs and their retries may take to finish: a ceiling for a hang, not a speed goal. Alone
# on an idle 2-core machine they take about 140 s; beside other scenarios and tests, over 360 s was seen in CI.
SETTLING_PATIENCE_SECONDS = 600
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def production_instance_config() -> dict[str, Any]:
    return _merged(yaml.safe_load(DEPLOY_CONFIG.read_text(encoding="utf-8")), TIMING_OVERRIDES)


class ProductionStack:
    def __init__(self, root: Path, postgres: PostgresCluster, mongo_uri: str, mongo_database: str) -> None:
        self.root = root
        self.config = production_instance_config()
        self.dagster_home = root / "dagster_home"
        self.dagster_home.mkdir(parents=True)
        (self.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(self.config), encoding="utf-8")
        self.export_dir = root / "export"
        self.workspace = root / "workspace.yaml"
        self.workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "python_module": {
                                "module_name": "esr_export_dagster_tests.daemon_location",
                                "working_directory": str(PROJECT_ROOT),
                                "location_name": "esr_export_daemon_test",
                            }
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        self.postgres_env = postgres.environment(postgres.create_database(f"dagster_{uuid.uuid4().hex[:10]}"))
        self.env = isolated_env(
            ESR_MONGODB_URI=mongo_uri,
            ESR_MONGODB_DATABASE=mongo_database,
            ESR_EXPORT_DIR=str(self.export_dir),
            ESR_DELIVERY_DIR=str(root / "esr-drop"),
            DAGSTER_HOME=str(self.dagster_home),
            PYTHONPATH=str(PROJECT_ROOT),
            **{TEST_SCHEDULE_CRON_FILE_VARIABLE: str(root / "schedule.cron")},
            **LAUNCH_TIMEOUT_ENV,
            **self.postgres_env,
        )
        self.log = root / "daemon.log"
        self.daemons: list[subprocess.Popen[bytes]] = []
        self._instance: DagsterInstance | None = None

    @property
    def max_concurrent_runs(self) -> int:
        return self.config["concurrency"]["runs"]["max_concurrent_runs"]

    @property
    def instance(self) -> DagsterInstance:
        """The same instance as the daemon's, read from its DAGSTER_HOME (env vars resolve when it loads)."""
        if self._instance is None:
            with mock.patch.dict(os.environ, self.postgres_env):
                self._instance = DagsterInstance.from_ref(InstanceRef.from_dir(str(self.dagster_home)))
        return self._instance

    def start_daemon(self) -> subprocess.Popen[bytes]:
        """Start ``dagster-daemon run``. Its code server's first load fixes the schedule's one tick
        (daemon_location.py); a restarted daemon loads the same cron, whose next tick is a day away."""
        daemon = Path(sys.executable).with_name("dagster-daemon")
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [str(daemon), "run", "-w", str(self.workspace)],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own group: the code server and the run workers it starts join it, so one killpg ends all.
                start_new_session=True,
            )
        self.daemons.append(process)
        return process

    def kill_daemon(self) -> None:
        """SIGKILL the daemon process alone, as a crash or an OOM kill of the daemon would."""
        daemon = self.daemons[-1]
        daemon.kill()
        daemon.wait()

    def stop(self) -> None:
        for process in self.daemons:
            stop_process_group(process)
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def log_tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    # -- what the instance recorded ---------------------------------------------------------------

    def schedule_runs(self) -> list[RunRecord]:
        """Every run of the test schedule, the run retries included (they inherit its tags)."""
        return list(self.instance.get_run_records(RunsFilter(tags={SCHEDULE_NAME_TAG: TEST_SCHEDULE_NAME})))

    def wait_until_settled(self, expected_runs: int, timeout: float = SETTLING_PATIENCE_SECONDS) -> list[RunRecord]:
        """Until the tick's runs and their retries are all finished and no retry is still to come."""
        deadline = time.monotonic() + timeout
        records: list[RunRecord] = []
        while time.monotonic() < deadline:
            records = self.schedule_runs()
            if len(roots(records)) >= expected_runs and _settled(records):
                return records
            self.require_daemon_alive()
            time.sleep(RUN_POLL_SECONDS)
        raise AssertionError(
            f"runs not settled within {timeout:.0f} s: {[(r.dagster_run.tags.get(DEANERY_TAG), r.dagster_run.status.value) for r in records]}"
            f"\n{self.log_tail()}"
        )

    def wait_for(
        self, condition: Callable[[list[RunRecord]], bool], what: str, timeout: float = 180
    ) -> list[RunRecord]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            records = self.schedule_runs()
            if condition(records):
                return records
            self.require_daemon_alive()
            time.sleep(RUN_POLL_SECONDS)
        raise AssertionError(f"{what}: not within {timeout:.0f} s\n{self.log_tail()}")

    def tick_over(self, expected_runs: int) -> str | None:
        """How the tick's runs ended once they all have (None while any is still to come): what a kill point
        that one of them should reach is waited for against."""
        if self.daemons and self.daemons[-1].poll() is not None:
            return f"dagster-daemon exited ({self.daemons[-1].returncode}):\n{self.log_tail()}"
        records = self.schedule_runs()
        if len(roots(records)) >= expected_runs and all(r.dagster_run.status in FINISHED for r in records):
            return f"all {len(records)} runs of the tick finished\n{self.log_tail()}"
        return None

    def require_daemon_alive(self) -> None:
        daemon = self.daemons[-1]
        assert daemon.poll() is None, f"dagster-daemon exited ({daemon.returncode}):\n{self.log_tail()}"

    def run_worker_pid(self, run_id: str) -> int:
        for record in self.instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records:
            found = re.search(r"Started process for run \(pid: (\d+)\)", record.event_log_entry.message or "")
            if found:
                return int(found.group(1))
        raise AssertionError(f"no run worker process recorded for run {run_id}")

    def was_enqueued(self, run_id: str) -> bool:
        return bool(self.instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_ENQUEUED).records)

    def failure_messages(self, run_id: str) -> str:
        messages = []
        for kind in (DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE):
            for record in self.instance.get_records_for_run(run_id, of_type=kind).records:
                event = record.event_log_entry.dagster_event
                error = getattr(event.event_specific_data, "error", None) if event else None
                messages.append(record.event_log_entry.message or "")
                while error is not None:
                    messages.append(error.message)
                    error = error.cause
        return "\n".join(messages)


def roots(records: Iterable[RunRecord]) -> list[RunRecord]:
    """The runs the schedule itself requested (not run retries)."""
    return [r for r in records if r.dagster_run.parent_run_id is None]


def _settled(records: list[RunRecord]) -> bool:
    ids = {r.dagster_run.run_id for r in records}
    for record in records:
        run = record.dagster_run
        if run.status not in FINISHED:
            return False
        if run.status == DagsterRunStatus.FAILURE:
            will_retry = run.tags.get(WILL_RETRY_TAG)
            if will_retry is None or (will_retry == "true" and run.tags.get(AUTO_RETRY_RUN_ID_TAG) not in ids):
                return False
    return True


def latest_by_deanery(records: Iterable[RunRecord]) -> dict[str, RunRecord]:
    latest: dict[str, RunRecord] = {}
    for record in sorted(records, key=lambda r: r.create_timestamp):
        latest[record.dagster_run.tags[DEANERY_TAG]] = record
    return latest


def most_in_flight(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of the intervals that overlap at one instant."""
    events = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda e: (e[0], e[1])
    )
    current = peak = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


def descendants(pid: int) -> list[int]:
    """The process's children, grandchildren, ... (from /proc: no psutil in this project)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_process_tree(pid: int) -> None:
    """SIGKILL a run worker with the step processes it started, as an OOM kill of its container would."""
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
