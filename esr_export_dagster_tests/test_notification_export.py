"""What only the notification (DNC) export does, end to end, against a real MongoDB wire server: its
creation-time eligibility, its own numbering beside the APP files, its asset check and its stale alerts.
The invariants it shares with the APP export are in test_export_invariants.py."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from dagster_msteams import MSTeamsResource

from esr_export_dagster.alerts import AlertChannelsResource
from esr_export_dagster.domain.notifications import NEW_POST, WITHDRAWAL
from esr_export_dagster.domain.records import DELETED_BEFORE_EXPORT, EXPORTED, INVALID_DATA, TO_EXPORT
from esr_export_dagster.domain.streams import APP_STREAM, NOTIFICATION_STREAM
from esr_export_dagster.storage.collections import COUNTER, NOTIFICATION_RECORDS

from . import kill_points
from .alert_servers import RecordingServer
from .invariants import assert_export_invariants, file_placements, files_on_disk
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
CUTOFF = dt.datetime(2021, 7, 31, 14, 0)


@pytest.fixture
def notifications(harness):
    harness.stream = NOTIFICATION_STREAM
    return harness


def test_notifications_that_are_not_eligible_are_never_changed(notifications):
    untouched = [
        *notifications.add_notifications("EMD", CUTOFF),  # at the cut-off: the next day's file
        *notifications.add_notifications("EMD", CUTOFF + dt.timedelta(hours=3)),
        *notifications.add_notifications("EMD", CUTOFF - dt.timedelta(hours=1), status=EXPORTED),
        *notifications.add_notifications("EMD", CUTOFF - dt.timedelta(hours=1), status=INVALID_DATA),
        *notifications.add_notifications("EMD", CUTOFF - dt.timedelta(hours=1), status=DELETED_BEFORE_EXPORT),
        *notifications.add_notifications("EOE", CUTOFF - dt.timedelta(hours=1)),  # another deanery
    ]
    eligible = notifications.add_notifications("EMD", CUTOFF - dt.timedelta(seconds=1), title_code=NEW_POST)
    before = {doc["_id"]: doc for doc in notifications.records.find({"_id": {"$in": [r["_id"] for r in untouched]}})}

    summary = notifications.run_ok(RUN_DATE, "EMD")

    after = {doc["_id"]: doc for doc in notifications.records.find({"_id": {"$in": list(before)}})}
    assert after == before
    assert summary["exported_by_this_run"] == len(eligible)
    assert summary["window"] == "createdDate < D 14:00 UTC"


def test_notifications_of_missed_days_all_go_in_the_next_days_file(notifications):
    # ESR sent nothing for days in October 2022; the pending notifications were aggregated into one file.
    older = [
        record
        for days_ago in (1, 2, 5)
        for record in notifications.add_notifications("NWN", CUTOFF - dt.timedelta(days=days_ago), count=2)
    ]

    summary = notifications.run_ok(RUN_DATE, "NWN")

    (name,) = summary["files_written_by_this_run"]
    assert name == "DE_NWN_DNC_20210731_00000001.DAT"
    assert sorted(file_placements(notifications.export_dir / name)) == sorted(r["notificationId"] for r in older)


def test_app_and_dnc_files_are_numbered_by_separate_counters(harness):
    harness.database[COUNTER].insert_one({"_id": "APP", "seq": 2765})
    harness.add("MER", RUN_DATE + dt.timedelta(days=10), count=2)
    harness.add_notifications("MER", CUTOFF - dt.timedelta(hours=2), count=3, title_code=WITHDRAWAL)

    app = harness.run_ok(RUN_DATE, "MER")
    harness.stream = NOTIFICATION_STREAM
    dnc = harness.run_ok(RUN_DATE, "MER")

    assert app["files_written_by_this_run"] == ["DE_MER_APP_20210731_00002766.DAT"]
    assert dnc["files_written_by_this_run"] == ["DE_MER_DNC_20210731_00000001.DAT"]
    assert harness.database[COUNTER].find_one({"_id": "DNC"})["seq"] == 1
    assert harness.database[COUNTER].find_one({"_id": "APP"})["seq"] == 2766
    assert_export_invariants(harness.database, harness.export_dir, APP_STREAM, first_sequence={"APP": 2766})
    assert_export_invariants(harness.database, harness.export_dir, NOTIFICATION_STREAM)


def test_a_sound_notification_export_passes_every_check(notifications):
    notifications.add_notifications("OXF", CUTOFF - dt.timedelta(hours=5), count=4)

    result = notifications.run(RUN_DATE, "OXF")

    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "no_notifications_left_behind": True,
        "file_numbers_contiguous": True,
        "files_match_records": True,
        "invalid_records_not_growing": True,
        "every_file_delivered": True,
        "esr_confirmed_every_file": True,
    }
    (file_event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["notification_export_file"]
    ]
    metadata = file_event.materialization.metadata
    assert metadata["exported_records"].value == 4
    assert "largest_per_post_count" not in metadata  # a per-post count means nothing without a per-post limit


def test_a_notification_arriving_during_the_run_fails_the_check(notifications, fault_proxy):
    notifications.add_notifications("OXF", CUTOFF - dt.timedelta(hours=5), count=2)
    # Hold the run at the end of its export, after its plan was frozen, and let upstream add one more.
    held = fault_proxy.add(Rule(kill_points.closes_batch, "hold"))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(notifications.run, RUN_DATE, "OXF", uri=fault_proxy.uri)
        kill_points.wait_until_reached(held, running)
        (left,) = notifications.add_notifications("OXF", CUTOFF - dt.timedelta(hours=1))
        fault_proxy.clear()
        result = running.result(timeout=120)

    assert result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "no_notifications_left_behind"]
    assert evaluation.passed is False
    assert evaluation.metadata["notifications_left"].value == 1
    assert evaluation.metadata["notification_ids"].value == str(left["notificationId"])
    assert "What to do" in evaluation.description


def test_a_notification_still_waiting_a_day_after_its_creation_is_announced_and_caught_up(notifications):
    late = notifications.add_notifications("WES", dt.datetime(2021, 7, 30, 9, 0), count=2)
    notifications.add_notifications("WES", dt.datetime(2021, 7, 31, 10, 0))  # not a day old yet
    now = dt.datetime(2021, 7, 31, 15, 0, tzinfo=dt.UTC)

    with RecordingServer() as teams:
        notifications.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url))
        with time_machine.travel(now, tick=False):
            result = notifications.tick_sensor()

        (text,) = teams.received
    assert "2 notification(s) in WES were created over a day ago and have not gone to ESR in a DNC file" in text
    assert f"Notification ids: {late[0]['notificationId']}, {late[1]['notificationId']}." in text
    assert "/assets/notification_export_file?view=partitions&partition=2021-07-31|WES" in text
    for record in late:
        for field in (
            "nextAppointmentTraineeLastName",
            "nextAppointmentTraineeEmailAddress",
            "currentTraineeGmcNumber",
        ):
            assert str(record[field]) not in text
    (request,) = result.run_requests
    assert request.job_name == "daily_notification_export_job"
    assert request.partition_key.keys_by_dimension == {"date": "2021-07-31", "deanery": "WES"}

    # The catch-up run exports everything created before the day's cut-off, the late ones included.
    notifications.run_ok(RUN_DATE, "WES")
    assert notifications.database[NOTIFICATION_RECORDS].count_documents({"status": TO_EXPORT}) == 0
    assert len(files_on_disk(notifications.export_dir, file_type="DNC")) == 1
