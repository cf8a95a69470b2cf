"""The data engineer's journey on a live `make dev` stack: a month's backfill for several deaneries launched
through Dagster's GraphQL API (what the UI's Materialize dialog sends), then the partitions page in Chromium."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from pymongo import MongoClient

from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.local.mongo_server import free_port
from esr_export_dagster.storage.collections import APP_RECORDS

from .conftest import PROJECT_ROOT, isolated_env
from .invariants import assert_export_invariants, files_on_disk

pytestmark = pytest.mark.integration

# The month up to today: runs withhold trainees who have already started (wall clock), so the backfilled
# records start after today, and the grid begins on the backfill's first day (ESR_FIRST_PARTITION_DATE).
TODAY = dt.datetime.now(dt.timezone.utc).date()
FIRST = TODAY - dt.timedelta(days=30)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(31)]
DEANERIES = ("EOE", "EMD", "KSS")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class LiveStack:
    def __init__(self, mongo_uri: str, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_name = f"esr_ui_{uuid.uuid4().hex[:10]}"
        self.export_dir = tmp / "export"
        self.mongo_uri = mongo_uri
        self.env = isolated_env(
            ESR_MONGODB_URI=mongo_uri,
            ESR_MONGODB_DATABASE=self.database_name,
            ESR_EXPORT_DIR=str(self.export_dir),
            ESR_DELIVERY_DIR=str(tmp / "esr-drop"),
            DAGSTER_HOME=str(tmp / "dagster_home"),
            ESR_FIRST_PARTITION_DATE=FIRST.isoformat(),
            # This checkout's package, even when the virtualenv's editable install points at another one.
            PYTHONPATH=str(PROJECT_ROOT),
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / "dev.log"

    def start(self) -> None:
        """`make dev`'s own entry point, on a free port, against this test's database."""
        executable = Path(sys.executable).with_name("esr-export-local")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(executable), "dev", "--port", str(self.port)], env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                data = self.graphql("{ version }")
                if data.get("version"):
                    return
            except OSError:
                pass
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            time.sleep(1)
        raise AssertionError(f"dagster dev did not come up: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
        assert "errors" not in payload, payload["errors"]
        return payload["data"]


@pytest.fixture(scope="module")
def stack(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    live = LiveStack(mongo_uri, tmp_path_factory.mktemp("live"))
    with MongoClient(mongo_uri) as client:
        database = client[live.database_name]
        placement = iter(range(600_000, 700_000))
        # Seeded before the stack starts, so `make dev` finds the database in use and adds no demo data.
        database[APP_RECORDS].insert_many(
            [
                applicant_record(next(placement), deanery, TODAY + dt.timedelta(days=day))
                for deanery in DEANERIES
                for day in range(3, 40, 2)
            ]
        )
        live.start()
        try:
            yield live
        finally:
            live.stop()
            client.drop_database(live.database_name)


LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status } }
  }
}"""


def test_a_month_for_several_deaneries_backfills_from_the_api_in_a_few_runs(stack):
    keys = [f"{day.isoformat()}|{deanery}" for day in DAYS for deanery in DEANERIES]
    launched = stack.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "assetSelection": [{"path": ["app_record_selection"]}, {"path": ["app_export_file"]}],
                "partitionNames": keys,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        state = stack.graphql(BACKFILL_STATUS, {"id": backfill_id})
        runs = state["runsOrError"]["results"]
        status = state["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED",) and runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
            break
        time.sleep(3)
    else:
        raise AssertionError(f"backfill still running: {state}")

    assert status == "COMPLETED_SUCCESS", state
    assert all(run["status"] == "SUCCESS" for run in runs)
    assert len(runs) <= len(DEANERIES)
    with MongoClient(stack.mongo_uri) as client:
        database = client[stack.database_name]
        assert database[APP_RECORDS].count_documents({"status": TO_EXPORT}) == 0
        assert database[APP_RECORDS].count_documents({"status": EXPORTED}) > 0
        assert_export_invariants(database, stack.export_dir)
    assert files_on_disk(stack.export_dir)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's chromium as root)")
def test_the_partitions_page_shows_the_date_by_deanery_grid(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(f"{stack.url}/assets/app_export_file?view=partitions", wait_until="networkidle")
            page.wait_for_selector("text=Materialized (", timeout=60_000)
            skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit newsletter prompt
            if skip.count():
                skip.click()
            page.screenshot(path=str(tmp_path / "partitions.png"), full_page=True)
            text = page.inner_text("body")
        finally:
            browser.close()
    # The status bar over the date × deanery grid: the backfilled month of three deaneries, the rest missing.
    materialized = len(DAYS) * len(DEANERIES)
    assert f"Materialized ({materialized})" in text
    assert "Missing (" in text and "Failed (0)" in text
    for deanery in ("EOE", "EMD", "KSS", "LDN", "YHD"):  # one row per deanery, backfilled or not
        assert deanery in text
