"""The daily schedules, APP at 13:00 UTC and DNC at 14:00 UTC: one run per deanery for that day's partition,
with a stable run key."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DefaultScheduleStatus, build_schedule_context

from esr_export_dagster.definitions import defs
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.streams import NOTIFICATION_STREAM
from esr_export_dagster.partitions import DEANERY_TAG
from esr_export_dagster.resources import ExportPolicyResource

from .conftest import run_in_new_interpreter

# name, cron, job, run-key prefix, a tick of 31 July 2021
SCHEDULES = {
    "APP": ("daily_app_export_schedule", "0 13 * * *", "daily_app_export_job", "app", 13),
    "DNC": ("daily_notification_export_schedule", "0 14 * * *", "daily_notification_export_job", "notification", 14),
}
each_schedule = pytest.mark.parametrize("stream", list(SCHEDULES))


def run_requests_at(stream: str, tick: dt.datetime):
    schedule = defs.resolve_schedule_def(SCHEDULES[stream][0])
    with build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        return list(schedule.evaluate_tick(context).run_requests or [])


def tick_of(stream: str, day: int = 31) -> dt.datetime:
    return dt.datetime(2021, 7, day, SCHEDULES[stream][4], 0, tzinfo=dt.UTC)


@each_schedule
def test_the_schedule_fires_at_its_hour_every_day_and_runs_by_default(stream):
    name, cron, job, _, _ = SCHEDULES[stream]
    schedule = defs.resolve_schedule_def(name)
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == job


@each_schedule
def test_a_tick_requests_one_run_per_deanery_for_that_days_partition(stream):
    requests = run_requests_at(stream, tick_of(stream))

    assert [r.partition_key.keys_by_dimension for r in requests] == [
        {"date": "2021-07-31", "deanery": deanery} for deanery in DEANERIES
    ]
    assert [r.tags[DEANERY_TAG] for r in requests] == list(DEANERIES)
    assert len({r.run_key for r in requests}) == len(DEANERIES)


@each_schedule
def test_run_keys_are_stable_so_a_re_evaluated_tick_launches_nothing_twice(stream):
    tick = tick_of(stream)
    assert [r.run_key for r in run_requests_at(stream, tick)] == [r.run_key for r in run_requests_at(stream, tick)]
    day_before = [r.run_key for r in run_requests_at(stream, tick_of(stream, 30))]
    assert set(day_before).isdisjoint(r.run_key for r in run_requests_at(stream, tick))
    assert run_requests_at(stream, tick)[0].run_key == f"{SCHEDULES[stream][3]}-2021-07-31-EOE"


def test_the_notification_export_time_is_configurable_for_the_schedule_and_the_cut_off_alike():
    # Read when the code location loads, so a fresh interpreter shows what a deployment would.
    probe = "\n".join(
        [
            "from esr_export_dagster.definitions import defs",
            "print(defs.resolve_schedule_def('daily_notification_export_schedule').cron_schedule)",
            "print(defs.resources['export_policy'].notification_export_time_utc.get_value())",
        ]
    )
    probed = run_in_new_interpreter(probe, ESR_NOTIFICATION_EXPORT_TIME_UTC="15:30", PYTHONWARNINGS="ignore")
    assert probed.returncode == 0, probed.stderr[-2000:]
    output = probed.stdout.split("\n")

    assert output[:2] == ["30 15 * * *", "15:30"]
    policy = ExportPolicyResource(notification_export_time_utc="15:30")
    assert policy.settings(NOTIFICATION_STREAM).eligibility.describe() == "createdDate < D 15:30 UTC"
