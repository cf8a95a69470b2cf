"""The 13:00 UTC schedule: one run per deanery for that day's partition, with a stable run key."""

from __future__ import annotations

import datetime as dt

from dagster import DefaultScheduleStatus, build_schedule_context

from esr_export_dagster.definitions import defs
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.partitions import DEANERY_TAG
from esr_export_dagster.schedules import daily_app_export_schedule

TICK = dt.datetime(2021, 7, 31, 13, 0, tzinfo=dt.timezone.utc)


def run_requests_at(tick: dt.datetime):
    with build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    ) as context:
        return list(daily_app_export_schedule.evaluate_tick(context).run_requests or [])


def test_the_schedule_fires_at_13_utc_every_day_and_runs_by_default():
    schedule = defs.resolve_schedule_def("daily_app_export_schedule")
    assert schedule.cron_schedule == "0 13 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "daily_app_export_job"


def test_a_tick_requests_one_run_per_deanery_for_that_days_partition():
    requests = run_requests_at(TICK)

    assert [r.partition_key.keys_by_dimension for r in requests] == [
        {"date": "2021-07-31", "deanery": deanery} for deanery in DEANERIES
    ]
    assert [r.tags[DEANERY_TAG] for r in requests] == list(DEANERIES)
    assert len({r.run_key for r in requests}) == len(DEANERIES)


def test_run_keys_are_stable_so_a_re_evaluated_tick_launches_nothing_twice():
    assert [r.run_key for r in run_requests_at(TICK)] == [r.run_key for r in run_requests_at(TICK)]
    next_day = [r.run_key for r in run_requests_at(TICK + dt.timedelta(days=1))]
    assert set(next_day).isdisjoint(r.run_key for r in run_requests_at(TICK))
    assert run_requests_at(TICK)[0].run_key == "app-2021-07-31-EOE"
