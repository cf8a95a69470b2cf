"""The instance's operational policies are versioned in dagster.yaml; a migration must not drop them.

In 2021 the exporter's retry policy vanished in a platform migration and nobody noticed for days.
"""

from __future__ import annotations

import yaml
from dagster import instance_for_test

from .conftest import PROJECT_ROOT


def local_instance_config() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text(encoding="utf-8"))


def test_runs_of_one_deanery_queue_behind_each_other():
    limits = local_instance_config()["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "esr/deanery", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


def test_run_retries_cover_crashed_workers_without_multiplying_op_retries():
    retries = local_instance_config()["run_retries"]
    assert retries["enabled"] is True and retries["max_retries"] >= 1
    assert retries["retry_on_asset_or_op_failure"] is False


def test_run_monitoring_retention_and_telemetry_are_set():
    config = local_instance_config()
    assert config["run_monitoring"]["enabled"] is True
    assert config["retention"]["schedule"]["purge_after_days"] > 0
    assert config["telemetry"]["enabled"] is False


def test_dagster_accepts_the_local_instance_configuration(tmp_path):
    with instance_for_test(overrides=local_instance_config(), temp_dir=str(tmp_path)) as instance:
        assert instance.run_retries_enabled
        assert instance.run_monitoring_enabled
        assert instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
