"""Configuration and failure modes: clear errors, nothing burned, nothing connected at import."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from esr_export_dagster.definitions import defs
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.records import TO_EXPORT
from esr_export_dagster.local.mongo_server import free_port
from esr_export_dagster.storage.collections import APP_RECORDS, COUNTER

from .conftest import PROJECT_ROOT, failure_message

RUN_DATE = dt.date(2021, 7, 31)


def test_the_code_location_loads_without_touching_mongodb():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESR_")}
    env["ESR_MONGODB_URI"] = f"mongodb://nobody:secret@127.0.0.1:{free_port()}/"
    started = time.monotonic()
    loaded = subprocess.run(
        [sys.executable, "-c", "from esr_export_dagster.definitions import defs; defs.get_repository_def()"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert time.monotonic() - started < 60


def test_the_code_location_loads_as_dagsters_own_tools_load_it(tmp_path):
    # The code server loads the module by name and refuses one holding more than one Definitions object at
    # its top level: importing ``defs`` in Python does not show that, `dagster dev` and the daemon do.
    module = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["dagster"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESR_", "DAGSTER_"))}
    env.update(
        ESR_MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/",
        ESR_EXPORT_DIR=str(tmp_path / "export"),
        DAGSTER_HOME=str(tmp_path),
        PYTHONPATH=str(PROJECT_ROOT),
    )
    validated = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-m", module["module_name"]],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validated.returncode == 0, validated.stderr[-2000:]
    assert "Validation successful" in validated.stderr + validated.stdout


def test_the_assets_share_a_date_by_deanery_partition_grid():
    repository = defs.get_repository_def()
    for key in ("app_record_selection", "app_export_file"):
        partitions = repository.asset_graph.get(_asset_key(key)).partitions_def
        dimensions = {d.name: d.partitions_def for d in partitions.partitions_defs}
        assert dimensions["deanery"].get_partition_keys() == list(DEANERIES)
        dates = dimensions["date"].get_partition_keys(current_time=dt.datetime(2021, 7, 31, 12, tzinfo=dt.UTC))
        assert dates[0] == "2021-07-01"
        assert dates[-1] == "2021-07-31"  # end_offset=1: today's partition already exists


@pytest.mark.integration
def test_an_unreachable_mongodb_fails_the_run_within_seconds_naming_host_and_port_but_not_the_password(harness):
    port = free_port()
    started = time.monotonic()

    result = harness.run(RUN_DATE, "EOE", uri=f"mongodb://esr_user:s3cr3t-pa55@127.0.0.1:{port}/")

    assert not result.success
    assert time.monotonic() - started < 20
    message = failure_message(result)
    assert f"127.0.0.1:{port}" in message
    assert "s3cr3t-pa55" not in message
    assert "s3cr3t-pa55" not in str([event.message for event in result.all_events])


@pytest.mark.integration
def test_an_unwritable_export_directory_fails_before_any_number_is_taken(harness, tmp_path):
    harness.database[COUNTER].insert_one({"_id": harness.counter_id("PEN"), "seq": 9})
    harness.add("PEN", RUN_DATE + dt.timedelta(days=3), count=2)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    result = harness.run(RUN_DATE, "PEN", export_dir=blocker / "export")

    assert not result.success
    message = failure_message(result)
    assert "is not writable" in message and str(blocker / "export") in message
    counter = harness.counter("PEN")
    assert counter.seq == 9 and counter.open_batch is None
    assert harness.database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 2
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []  # a retry cannot fix configuration: fail at once


def test_every_setting_is_read_through_settings_and_documented_in_the_readme():
    import re

    from esr_export_dagster.settings import SETTINGS

    package = PROJECT_ROOT / "esr_export_dagster"
    # The local launcher (make run / make dev) prepares the environment; the code location only reads it.
    readers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "local" not in path.relative_to(package).parts
        and re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())
    )
    assert readers == []
    readme = (PROJECT_ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n\n", 2)[1]
    documented = set(re.findall(r"`(ESR_[A-Z0-9_]+)`", table))
    assert documented == {setting.name for setting in SETTINGS}


def test_an_unset_or_empty_setting_takes_its_default_and_a_set_one_is_resolved_by_dagster(monkeypatch):
    from dagster import EnvVar

    from esr_export_dagster.settings import DAGSTER_UI_URL, DELIVERY_ALERT_MINUTES

    monkeypatch.setenv(DAGSTER_UI_URL.name, "")
    monkeypatch.delenv(DELIVERY_ALERT_MINUTES.name, raising=False)
    assert DAGSTER_UI_URL.resource_value() == DAGSTER_UI_URL.load_value() == "http://127.0.0.1:3000"
    assert DELIVERY_ALERT_MINUTES.resource_int() == 30

    monkeypatch.setenv(DAGSTER_UI_URL.name, "https://dagster.example")
    value = DAGSTER_UI_URL.resource_value()
    assert isinstance(value, EnvVar) and value.env_var_name == DAGSTER_UI_URL.name
    assert DAGSTER_UI_URL.load_value() == "https://dagster.example"


def _asset_key(name: str):
    from dagster import AssetKey

    return AssetKey(name)
