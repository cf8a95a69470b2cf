"""The stale-record sensor, replayed through the July 2021 incident with the clock under the test's control."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from dagster import SensorResult
from dagster_msteams import MSTeamsResource

from esr_export_dagster.alerts import AlertChannelsResource, EsrSlackResource
from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.local.demo_data import applicant_record, notification_record
from esr_export_dagster.resources import StaleRecordPolicyResource
from esr_export_dagster.storage.collections import APP_RECORDS, NOTIFICATION_RECORDS

from .alert_servers import RecordingServer
from .invariants import assert_export_invariants

pytestmark = pytest.mark.integration

STARTERS = dt.date(2021, 8, 4)
DEANERIES = ("EOE", "LDN", "MER")
UTC = dt.UTC


def at(day: int, hour: int, minute: int = 0, month: int = 7) -> dt.datetime:
    return dt.datetime(2021, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def incident(harness):
    """Placements added late on 30 July 2021 for 4 August starters, in three deaneries."""
    placement = iter(range(900_000, 901_000))
    records = [
        applicant_record(next(placement), deanery, STARTERS, created=dt.datetime(2021, 7, 30, 17, 30))
        for deanery in DEANERIES
        for _ in range(3)
    ]
    harness.database[APP_RECORDS].insert_many(records)
    return records


class Sensor:
    """Evaluates the real sensor tick by tick, carrying its cursor, like the daemon does."""

    def __init__(self, harness):
        self.harness = harness
        self.cursor: str | None = None

    def tick(self, now: dt.datetime) -> SensorResult:
        with time_machine.travel(now, tick=False):
            result = self.harness.tick_sensor(cursor=self.cursor)
        self.cursor = result.cursor
        return result


def requested(result: SensorResult) -> list[tuple[str, str]]:
    return [
        (r.partition_key.keys_by_dimension["date"], r.partition_key.keys_by_dimension["deanery"])
        for r in result.run_requests or []
    ]


def test_the_incident_is_announced_at_the_first_tick_after_the_failed_run_and_caught_up_the_same_day(
    harness, incident, tmp_path
):
    blocked = tmp_path / "unmounted-share"
    blocked.write_text("")
    with RecordingServer() as teams:
        harness.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url + "teams"))
        sensor = Sensor(harness)

        # 13:00 on 31 July: every deanery's scheduled run fails (here: the export share is not mounted).
        for deanery in DEANERIES:
            assert not harness.run(dt.date(2021, 7, 31), deanery, export_dir=blocked / "export").success

        before_grace = sensor.tick(at(31, 13, 45))
        assert teams.received == [] and requested(before_grace) == []

        first = sensor.tick(at(31, 14, 0))
        assert requested(first) == [("2021-07-31", d) for d in DEANERIES]
        assert len(teams.received) == len(DEANERIES)
        eoe = next(text for text in teams.received if " EOE " in text)
        assert "3 applicant record(s) in EOE should have gone to ESR in today's 13:00 export" in eoe
        assert "Earliest start date: 2021-08-04" in eoe
        assert "http://dagster.example:3000/assets/app_export_file?view=partitions&partition=2021-07-31|EOE" in eoe
        for request in first.run_requests:
            assert request.run_key.startswith("catch-up-daily_app_export_job-2021-07-31-")

        # The catch-up runs the sensor requested export everything, that same day.
        for run_date, deanery in requested(first):
            harness.run_ok(dt.date.fromisoformat(run_date), deanery)
        assert harness.database[APP_RECORDS].count_documents({"status": EXPORTED}) == len(incident)
        assert_export_invariants(harness.database, harness.export_dir)

        cleared = sensor.tick(at(31, 14, 15))
        assert requested(cleared) == []
        assert [t for t in teams.received[len(DEANERIES) :]] == [
            f"ESR export resolved: {d} no longer has overdue applicant records waiting." for d in DEANERIES
        ]


def test_without_catch_up_the_records_become_at_risk_and_then_past_their_start(harness, incident):
    harness.stale_policy = StaleRecordPolicyResource(ui_url="http://dagster.example:3000", catch_up_runs=False)
    sensor = Sensor(harness)
    assert requested(sensor.tick(at(31, 14, 0))) == []  # overdue, announced, but no catch-up wanted

    harness.stale_policy = StaleRecordPolicyResource(ui_url="http://dagster.example:3000")
    at_risk = sensor.tick(at(3, 9, 0, month=8))
    assert requested(at_risk) == [("2021-08-02", d) for d in DEANERIES]
    announced = json.loads(sensor.cursor)["announced"]
    assert set(announced) == {f"{d}|at_risk" for d in DEANERIES}

    past = sensor.tick(at(5, 9, 0, month=8))
    assert requested(past) == []  # a record past its start date is for a human to decide
    assert set(json.loads(sensor.cursor)["announced"]) == {f"{d}|past_start" for d in DEANERIES}


def test_an_unchanged_problem_is_not_repeated_until_a_day_has_passed(harness, incident):
    with RecordingServer() as teams:
        harness.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url))
        sensor = Sensor(harness)
        sensor.tick(at(5, 9, 0, month=8))
        assert len(teams.received) == len(DEANERIES)

        sensor.tick(at(5, 9, 15, month=8))
        sensor.tick(at(5, 20, 0, month=8))
        assert len(teams.received) == len(DEANERIES)

        sensor.tick(at(6, 9, 0, month=8))
        reminders = teams.received[len(DEANERIES) :]
        assert len(reminders) == len(DEANERIES)
        assert all(text.startswith("ESR export reminder (still unresolved)") for text in reminders)


def test_a_failing_webhook_keeps_the_alert_and_delivers_it_on_the_next_tick(harness, incident):
    with RecordingServer(statuses=[500, 500, 500, 200]) as teams:
        harness.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url))
        sensor = Sensor(harness)

        sensor.tick(at(5, 9, 0, month=8))
        assert teams.received == []
        assert len(json.loads(sensor.cursor)["undelivered"]) == len(DEANERIES)

        sensor.tick(at(5, 9, 15, month=8))
        assert len(teams.received) == len(DEANERIES)
        assert json.loads(sensor.cursor)["undelivered"] == []


def test_alerts_reach_slack_through_its_web_api(harness, incident):
    with RecordingServer(slack=True) as slack:
        harness.alert_channels = AlertChannelsResource(
            slack=EsrSlackResource(token="xoxb-test-token", api_url=slack.url + "api/"), slack_channel="#esr-monitoring"
        )
        Sensor(harness).tick(at(5, 9, 0, month=8))
    assert len(slack.received) == len(DEANERIES)
    assert all("already started" in text for text in slack.received)


def test_with_no_channel_configured_the_alert_is_logged_and_shown_on_the_tick(harness, incident, capfd):
    result = Sensor(harness).tick(at(5, 9, 0, month=8))

    assert result.skip_reason is not None
    assert result.skip_reason.skip_message == "3 alert(s) sent: past start EOE, LDN, MER; 0 catch-up run(s) requested"
    logged = capfd.readouterr().err
    assert logged.count("- WARNING - ESR export alert:") == len(DEANERIES)


def test_each_tick_states_its_outcome_in_one_line_and_the_cursor_stays_small(harness, incident, capfd):
    sensor = Sensor(harness)

    first = sensor.tick(at(31, 15, 0))
    second = sensor.tick(at(31, 15, 15))
    gone = sensor.tick(at(5, 9, 0, month=8))

    assert requested(first) == [("2021-07-31", d) for d in DEANERIES]
    logged = capfd.readouterr().err
    assert "3 alert(s) sent: overdue EOE, LDN, MER; 3 catch-up run(s) requested" in logged
    assert second.skip_reason is None  # the catch-up runs are requested again until the records go
    assert "0 alerts sent; 3 problem(s) unchanged since announced; 3 catch-up run(s) requested" in logged
    assert gone.skip_reason.skip_message == (
        "6 alert(s) sent: past start EOE, LDN, MER; cleared overdue EOE, LDN, MER; 0 catch-up run(s) requested"
    )
    assert "\n" not in gone.skip_reason.skip_message
    assert len(sensor.cursor) < 200


def test_a_cursor_of_the_earlier_layout_is_read_without_announcing_again(harness, incident):
    sensor = Sensor(harness)
    sensor.cursor = json.dumps(
        {
            "announced": {
                f"{d}|past_start": {"count": 3, "announced_at": at(5, 8, 0, month=8).isoformat()} for d in DEANERIES
            },
            "undelivered": [],
        }
    )

    result = sensor.tick(at(5, 9, 0, month=8))

    assert (
        result.skip_reason.skip_message
        == "0 alerts sent; 3 problem(s) unchanged since announced; 0 catch-up run(s) requested"
    )


def test_alerts_and_logs_carry_no_personal_data(harness, incident, caplog, capfd):
    with RecordingServer() as teams:
        harness.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url))
        sensor = Sensor(harness)
        sensor.tick(at(31, 14, 0))
        sensor.tick(at(5, 9, 0, month=8))
    text = "\n".join(
        teams.received + [r.getMessage() for r in caplog.records] + [sensor.cursor or "", capfd.readouterr().err]
    )
    for record in incident:
        applicant = record["applicant"]
        for value in (
            applicant["lastName"],
            applicant["firstName"],
            applicant["ukNino"],
            applicant["applicantEmailAddress"],
            applicant["professionalBodies"][0]["regNumber"],
            applicant["dob"].date().isoformat(),
        ):
            assert value not in text


def test_records_of_no_known_deanery_are_announced_once_and_never_break_the_tick(harness, incident):
    stray = applicant_record(990_001, "LDN ", STARTERS)
    homeless = applicant_record(990_002, "EOE", STARTERS)
    del homeless["deanery"]
    harness.database[APP_RECORDS].insert_many([stray, homeless])
    harness.database[NOTIFICATION_RECORDS].insert_one(notification_record(990_003, "ZZZ", dt.datetime(2021, 7, 30, 9)))
    with RecordingServer() as teams:
        harness.alert_channels = AlertChannelsResource(teams=MSTeamsResource(hook_url=teams.url))
        sensor = Sensor(harness)

        first = sensor.tick(at(31, 15, 0))
        sensor.tick(at(31, 15, 15))

    # The known deaneries' records are still caught up; no run is requested for a code off the allow-list.
    assert requested(first) == [("2021-07-31", d) for d in DEANERIES]
    assert set(json.loads(sensor.cursor)["announced"]) == {
        *(f"{d}|overdue" for d in DEANERIES),
        "?|unknown_deanery",
        "?|notification_unknown_deanery",
    }
    unknown = [text for text in teams.received if "not an ESR deanery code" in text]
    assert len(unknown) == 2  # once each, not again at the next tick
    assert any("Placement ids: 990001, 990002." in text for text in unknown)
    assert any("Notification ids: 990003." in text for text in unknown)


def test_the_sensor_builds_no_index_the_export_prepares_the_queue_index_it_reads(harness, incident):
    records = harness.database[APP_RECORDS]
    before = len(list(records.list_indexes()))

    Sensor(harness).tick(at(31, 14, 0))
    after_tick = len(list(records.list_indexes()))
    harness.run_ok(dt.date(2021, 7, 31), "EOE")

    assert after_tick == before
    assert len(list(records.list_indexes())) > before
