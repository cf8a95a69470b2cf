"""The instance's operational policies are versioned in dagster.yaml (local) and deploy/dagster.yaml
(production); a migration must not drop or weaken them.

In 2021 the exporter's retry policy vanished in a platform migration and nobody noticed for days. Every
policy test below runs against both files, so neither can drift on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml
from dagster import instance_for_test
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config

from esr_export_dagster.definitions import defs
from esr_export_dagster.ops import FILE_SEQUENCE_POOL
from esr_export_dagster.partitions import DEANERY_LIMITED_TAGS, DEANERY_TAG, PARTITION_DEANERY_TAG
from esr_export_dagster.stream_definitions import EXPORT_JOBS

from .conftest import PROJECT_ROOT

LOCAL = PROJECT_ROOT / "dagster.yaml"
PRODUCTION = PROJECT_ROOT / "deploy" / "dagster.yaml"
INSTANCE_FILES = pytest.mark.parametrize("config_path", [LOCAL, PRODUCTION], ids=["local", "production"])

# Storage is the one section allowed to differ between the environments.
ENVIRONMENT_SPECIFIC = {"storage"}

DEANERY_LIMITS = [{"key": tag, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} for tag in DEANERY_LIMITED_TAGS]


def load(config_path: Path) -> dict[str, Any]:
    return yaml.safe_load(config_path.read_text(encoding="utf-8"))


def policies(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key not in ENVIRONMENT_SPECIFIC}


@INSTANCE_FILES
def test_runs_of_one_deanery_queue_behind_each_other(config_path):
    assert DEANERY_LIMITED_TAGS == ("esr/deanery", "dagster/partition/deanery")
    assert load(config_path)["concurrency"]["runs"]["tag_concurrency_limits"] == DEANERY_LIMITS


def test_a_one_partition_run_carries_the_deanery_in_the_tag_dagster_adds_and_the_limit_names(harness):
    # The tags of a one-partition run come from the job's partition set, as for the UI's one-partition
    # Materialize; the schedule's DEANERY_TAG is given here as the schedule gives it.
    run = harness.run(dt.date(2021, 7, 31), "EMD").dagster_run
    assert run.tags[PARTITION_DEANERY_TAG] == "EMD"
    assert run.tags[DEANERY_TAG] == "EMD"


@INSTANCE_FILES
def test_the_run_queue_has_a_finite_limit(config_path):
    max_runs = load(config_path)["concurrency"]["runs"]["max_concurrent_runs"]
    assert isinstance(max_runs, int) and max_runs >= 1


@INSTANCE_FILES
def test_the_counter_pool_admits_fewer_runs_at_once_than_the_run_queue(config_path):
    concurrency = load(config_path)["concurrency"]
    default_limit = concurrency["pools"]["default_limit"]
    # At least one, or the counter op never runs; below the runs allowed at once, or it never binds.
    assert isinstance(default_limit, int) and 1 <= default_limit < concurrency["runs"]["max_concurrent_runs"]


@INSTANCE_FILES
def test_run_retries_cover_crashed_workers_without_multiplying_op_retries(config_path):
    retries = load(config_path)["run_retries"]
    assert retries["enabled"] is True and retries["max_retries"] >= 1
    assert retries["retry_on_asset_or_op_failure"] is False


@INSTANCE_FILES
def test_run_monitoring_is_on(config_path):
    monitoring = load(config_path)["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] > 0 and monitoring["poll_interval_seconds"] > 0


@INSTANCE_FILES
def test_schedule_and_sensor_ticks_are_purged(config_path):
    retention = load(config_path)["retention"]
    assert retention["schedule"]["purge_after_days"] > 0
    sensor = retention["sensor"]["purge_after_days"]
    # Skipped ticks come every 15 minutes from the stale-record sensor: they are the ones that pile up.
    assert sensor["skipped"] > 0 and sensor["failure"] > 0


@INSTANCE_FILES
def test_telemetry_is_off(config_path):
    assert load(config_path)["telemetry"]["enabled"] is False


@INSTANCE_FILES
def test_dagster_accepts_the_instance_file_against_its_schema(config_path):
    config, custom_instance_class = dagster_instance_config(str(config_path.parent), config_path.name)
    assert custom_instance_class is None
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == DEANERY_LIMITS


def test_production_and_local_carry_identical_policies():
    assert policies(load(PRODUCTION)) == policies(load(LOCAL))


def test_dagster_applies_the_local_policies(tmp_path):
    with instance_for_test(overrides=load(LOCAL), temp_dir=str(tmp_path)) as instance:
        assert (
            instance.run_retries_enabled
            and instance.run_retries_max_retries == load(LOCAL)["run_retries"]["max_retries"]
        )
        assert instance.run_monitoring_enabled
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == load(LOCAL)["concurrency"]["runs"]["max_concurrent_runs"]
        assert queue.tag_concurrency_limits == DEANERY_LIMITS
        assert instance.global_op_concurrency_default_limit == load(LOCAL)["concurrency"]["pools"]["default_limit"]


def test_production_keeps_runs_event_logs_and_schedules_in_postgres():
    storage = load(PRODUCTION)["storage"]
    assert set(storage) == {"postgres"}
    assert storage["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_every_production_connection_setting_comes_from_the_environment():
    postgres_db = load(PRODUCTION)["storage"]["postgres"]["postgres_db"]
    connection = {key: value for key, value in postgres_db.items() if key != "scheme"}
    assert {"hostname", "port", "username", "password", "db_name"} <= set(connection)
    for key, value in connection.items():
        assert isinstance(value, dict) and set(value) == {"env"}, f"{key} is written in the file"
        assert re.fullmatch(r"DAGSTER_PG_[A-Z]+", value["env"]), value


def test_no_password_is_written_in_the_production_file():
    text = PRODUCTION.read_text(encoding="utf-8")
    assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), "a connection URL with credentials"
    password = load(PRODUCTION)["storage"]["postgres"]["postgres_db"]["password"]
    assert password == {"env": "DAGSTER_PG_PASSWORD"}


def test_the_production_storage_resolves_to_a_psycopg2_url_from_the_environment(monkeypatch):
    """What dagster-postgres does with the file at start-up, short of connecting."""
    postgres = dagster_instance_config(str(PRODUCTION.parent), PRODUCTION.name)[0]["storage"]["postgres"]
    for name, value in {
        "DAGSTER_PG_HOST": "pg.internal",
        "DAGSTER_PG_PORT": "6543",
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "from-the-environment",
        "DAGSTER_PG_DB": "dagster",
    }.items():
        monkeypatch.setenv(name, value)

    resolved = process_config(DagsterPostgresStorage.config_type(), postgres)

    assert resolved.success, resolved.errors
    url = sqlalchemy.engine.make_url(pg_url_from_config(resolved.value))
    assert (url.drivername, url.host, url.port, url.database) == ("postgresql+psycopg2", "pg.internal", 6543, "dagster")
    assert url.password == "from-the-environment"
    # psycopg2 is what the storage will load: psycopg 3 is not installed.
    assert sqlalchemy.create_engine(url).dialect.driver == "psycopg2"


def test_the_production_storage_refuses_to_start_without_its_environment(monkeypatch):
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.delenv(name, raising=False)
    postgres = dagster_instance_config(str(PRODUCTION.parent), PRODUCTION.name)[0]["storage"]["postgres"]

    resolved = process_config(DagsterPostgresStorage.config_type(), postgres)

    assert not resolved.success
    assert {error.stack.levels[-1] for error in resolved.errors} == {
        "hostname",
        "port",
        "username",
        "password",
        "db_name",
    }


@pytest.mark.parametrize("job", EXPORT_JOBS, ids=lambda job: job.name)
def test_the_counter_op_takes_its_slot_from_the_configured_pool(job):
    assert FILE_SEQUENCE_POOL == "esr_file_sequence"
    # The job as the code location serves it: only the counter op queues on the pool.
    served = defs.resolve_job_def(job.name)
    pooled = [op_def.name for op_def in served.graph.iterate_op_defs() if op_def.pool == FILE_SEQUENCE_POOL]
    assert len(pooled) == 1
    assert re.fullmatch(r"allocate_\w+_file_sequence", pooled[0])
