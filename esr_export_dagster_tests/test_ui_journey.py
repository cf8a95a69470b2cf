"""The data engineer's journey on a live `make dev` stack, in Chromium, following the README's "In the Dagster
UI" steps word for word: the backfill dialog (its route, buttons and texts are read from README_UI_STEPS, which
a test finds verbatim in the README), the runs it launches, then the partitions page."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.local.cli import LOCAL_FOLDERS
from esr_export_dagster.local.demo_data import applicant_record, notification_record
from esr_export_dagster.local.mongo_server import free_port
from esr_export_dagster.settings import SETTINGS
from esr_export_dagster.storage.collections import APP_RECORDS, NOTIFICATION_RECORDS

from . import system_tools
from .conftest import PROJECT_ROOT, isolated_env, local_folders_under
from .invariants import assert_export_invariants, files_on_disk

# One worker runs the module's tests, so they share the one `dagster dev` stack its module fixture starts.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ui_journey")]

# Runs withhold trainees who have already started (wall clock), so the seeded records start after today;
# the grid begins a month back (ESR_FIRST_PARTITION_DATE) and the backfill takes yesterday and today, for
# which every seeded record is eligible (start within 2 days .. 13 weeks of the day).
TODAY = dt.datetime.now(dt.UTC).date()
FIRST = TODAY - dt.timedelta(days=30)
DAYS = [TODAY - dt.timedelta(days=1), TODAY]
DEANERIES = ("EOE", "EMD", "KSS")
ALL_DEANERIES = 13
README = PROJECT_ROOT / "README.md"

# What the README's step 2 tells the data engineer to open, click and read, in its order.
SKIP = "Skip"  # step 1: Dagster's first-visit newsletter prompt
LINEAGE_ROUTE = '/asset-groups~group:"esr_app_export"'
MATERIALIZE_ALL = "Materialize all…"
DIALOG_TITLE = "Launch runs to materialize 2 assets"
DATE_RANGE_EXAMPLE = "[2021-07-31...2021-08-03]"
ALL = "All"
ONLY_MISSING = "Backfill only failed and missing partitions within selection"
POLICY_NOTE = (
    "Dagster will materialize the selected partitions for the selected assets using varying backfill policies."
)
LAUNCH = "Launch backfill"
RUN_NAME = "__ASSET_JOB"
README_UI_STEPS = (
    SKIP,
    LINEAGE_ROUTE,
    MATERIALIZE_ALL,
    DIALOG_TITLE,
    DATE_RANGE_EXAMPLE,
    ALL,
    ONLY_MISSING,
    LAUNCH,
    RUN_NAME,
)
# The README's rule for the number of runs, and its example that this test's selection instantiates.
RUNS_EXAMPLE = "3 dates × **All** deaneries make 3 runs (one per date, all 13 deaneries)"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM = system_tools.chromium()


class LiveStack:
    def __init__(self, mongo_uri: str, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_name = f"esr_ui_{uuid.uuid4().hex[:10]}"
        self.mongo_uri = mongo_uri
        self.env = isolated_env(
            ESR_MONGODB_URI=mongo_uri,
            ESR_MONGODB_DATABASE=self.database_name,
            **local_folders_under(tmp),
            ESR_FIRST_PARTITION_DATE=FIRST.isoformat(),
            # This checkout's package, even when the virtualenv's editable install points at another one.
            PYTHONPATH=str(PROJECT_ROOT),
        )
        self.export_dir = Path(self.env["ESR_EXPORT_DIR"])
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / "dev.log"

    def start(self) -> None:
        """`make dev`'s own entry point, on a free port, against this test's database."""
        executable = Path(sys.executable).with_name("esr-export-local")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(executable), "dev", "--port", str(self.port)],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=log,
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
        # `make dev` seeds each empty collection: without a notification of the test's own, the stale-record
        # sensor would export the demo's notifications beside the backfill, a run per deanery. This one is
        # long exported, so nothing is due.
        database[NOTIFICATION_RECORDS].insert_one(
            notification_record(950_000, DEANERIES[0], dt.datetime.combine(FIRST, dt.time()), status=EXPORTED)
        )
        live.start()
        try:
            yield live
        finally:
            live.stop()
            client.drop_database(live.database_name)


BACKFILLS = """
{
  partitionBackfillsOrError(limit: 5) { ... on PartitionBackfills { results { id status numPartitions } } }
}"""
BACKFILL_RUNS = """
query BackfillRuns($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}"""


def test_the_stack_keeps_every_folder_make_dev_defaults_into_the_checkout_in_its_own_directory(tmp_path):
    live = LiveStack("mongodb://127.0.0.1:1", tmp_path)
    settings_into_local = {s.name for s in SETTINGS if (s.default or "").startswith(".local/")}
    assert settings_into_local, "settings.py no longer defaults any folder into .local/: this test guards nothing"
    for name in settings_into_local | set(LOCAL_FOLDERS):
        folder = live.env.get(name)
        assert folder and Path(folder).is_relative_to(tmp_path), f"{name} would be the checkout's own .local folder"


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def test_every_label_the_browser_test_clicks_or_reads_is_written_in_the_readme():
    text = readme_text()
    for label in README_UI_STEPS:
        assert label in text, label
    flowing = " ".join(text.split())  # the README wraps its lines
    assert POLICY_NOTE in flowing
    assert RUNS_EXAMPLE in flowing


def skip_the_newsletter_prompt(page: Any) -> None:
    """Click **Skip** on Dagster's first-visit prompt whenever it shows, before any action of the test: on a
    busy machine it can open seconds after the page looked ready, over the button the test clicks next."""
    page.add_locator_handler(page.get_by_role("button", name=SKIP, exact=True), lambda skip: skip.click())


def wait_for_backfill(stack: LiveStack) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    deadline = time.monotonic() + 480
    backfills: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        backfills = stack.graphql(BACKFILLS)["partitionBackfillsOrError"]["results"]
        if backfills:
            backfill = backfills[0]
            runs = stack.graphql(BACKFILL_RUNS, {"id": backfill["id"]})["runsOrError"]["results"]
            if backfill["status"] != "REQUESTED" and all(
                r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs
            ):
                return backfill, runs
        time.sleep(3)
    raise AssertionError(f"backfill still running: {backfills}")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's chromium as root)")
def test_the_readme_backfill_steps_launch_one_run_per_date_for_all_deaneries(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    date_range = f"[{DAYS[0].isoformat()}...{DAYS[-1].isoformat()}]"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            skip_the_newsletter_prompt(page)
            page.goto(stack.url + urllib.parse.quote(LINEAGE_ROUTE, safe="/~"), wait_until="networkidle")
            page.get_by_role("button", name=MATERIALIZE_ALL).click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text(DIALOG_TITLE).wait_for(timeout=60_000)
            dialog_text = " ".join(dialog.inner_text().split())
            assert ONLY_MISSING in dialog_text
            assert POLICY_NOTE in dialog_text
            date_box = dialog.get_by_placeholder("ex: ", exact=False)
            date_box.fill(date_range)
            date_box.press("Enter")
            # The date dimension's "All" comes first, the deanery dimension's second.
            dialog.get_by_role("button", name=ALL, exact=True).nth(1).click()
            dialog.get_by_text(f"{len(DAYS) * ALL_DEANERIES} partitions", exact=True).wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "backfill-dialog.png"))
            dialog.get_by_role("button", name=LAUNCH).click()
            dialog.wait_for(state="hidden", timeout=60_000)
        finally:
            browser.close()

    backfill, runs = wait_for_backfill(stack)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert backfill["numPartitions"] == len(DAYS) * ALL_DEANERIES
    # Fewer dates than deaneries: one run per date, each over the 13 deaneries, none with a deanery tag.
    assert len(runs) == len(DAYS)
    assert all(run["status"] == "SUCCESS" and run["jobName"] == RUN_NAME for run in runs)
    ranges = sorted(
        (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"])
        for tags in ({tag["key"]: tag["value"] for tag in run["tags"]} for run in runs)
    )
    assert ranges == [(f"{day.isoformat()}|EOE", f"{day.isoformat()}|YHD") for day in DAYS]
    assert not any(tag["key"] in ("esr/deanery", "dagster/partition/deanery") for run in runs for tag in run["tags"])
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
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            skip_the_newsletter_prompt(page)
            # The status bar's counts come from the asset's partition status, which the webserver may still be
            # bringing up to date right after the backfill when the machine is busy: look again (up to 3
            # minutes) until the backfilled count shows, then read the page once and judge it below.
            deadline = time.monotonic() + 180
            while True:
                page.goto(f"{stack.url}/assets/app_export_file?view=partitions", wait_until="networkidle")
                page.wait_for_selector("text=Materialized (", timeout=60_000)
                shown = f"Materialized ({len(DAYS) * ALL_DEANERIES})" in page.inner_text("body")
                if shown or time.monotonic() > deadline:
                    break
                time.sleep(5)
            page.screenshot(path=str(tmp_path / "partitions.png"), full_page=True)
            text = page.inner_text("body")
        finally:
            browser.close()
    # The status bar over the date × deanery grid: the backfilled days of every deanery, the rest missing.
    materialized = len(DAYS) * ALL_DEANERIES
    assert f"Materialized ({materialized})" in text
    assert "Missing (" in text and "Failed (0)" in text
    for deanery in ("EOE", "EMD", "KSS", "LDN", "YHD"):  # one row per deanery, backfilled or not
        assert deanery in text
