"""The daily exports: APP at 13:00 UTC, DNC an hour later; one run per deanery, each on its own partition."""

from __future__ import annotations

import datetime as dt
import os

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from .domain.deaneries import DEANERIES
from .domain.streams import ExportStream
from .domain.window import NOTIFICATION_RUN_TIME_UTC
from .partitions import DEANERY_TAG, export_partition_key


def daily_cron(run_time_utc: dt.time) -> str:
    return f"{run_time_utc.minute} {run_time_utc.hour} * * *"


def configured_run_time(variable: str, default: dt.time) -> dt.time:
    """A daily run time from the environment (HH:MM, UTC), read when the code location loads."""
    return dt.time.fromisoformat(os.environ.get(variable, default.strftime("%H:%M")))


def build_daily_export_schedule(
    job_name: str, stream: ExportStream, cron_schedule: str, when: str, name: str | None = None
) -> ScheduleDefinition:
    """One run request per deanery for the tick's date, each with a run key stable per day and deanery.

    Any cron and name: the production-daemon tests tick the same run requests at a time of their choosing.
    """

    @schedule(
        name=name or stream.schedule_name,
        job_name=job_name,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"{when}, export each deanery's {stream.file_type} file for that day (one run per deanery).",
    )
    def daily_export_schedule(context: ScheduleEvaluationContext):
        run_date = context.scheduled_execution_time.date()
        for deanery in DEANERIES:
            yield RunRequest(
                # A re-evaluated tick never launches the same export twice.
                run_key=f"{stream.name}-{run_date.isoformat()}-{deanery}",
                partition_key=export_partition_key(run_date, deanery),
                tags={DEANERY_TAG: deanery},
            )

    return daily_export_schedule


# The notification export's time is also its eligibility cut-off (ExportPolicyResource reads the same
# variable), so a notification created after a day's run goes out in the next day's file.
NOTIFICATION_EXPORT_TIME_VARIABLE = "ESR_NOTIFICATION_EXPORT_TIME_UTC"
NOTIFICATION_EXPORT_TIME = configured_run_time(NOTIFICATION_EXPORT_TIME_VARIABLE, NOTIFICATION_RUN_TIME_UTC)
