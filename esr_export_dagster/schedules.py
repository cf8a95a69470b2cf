"""The daily exports: APP at 13:00 UTC, DNC an hour later; one run per deanery, each on its own partition."""

from __future__ import annotations

import datetime as dt

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
from .settings import NOTIFICATION_EXPORT_TIME_UTC


def daily_cron(run_time_utc: dt.time) -> str:
    return f"{run_time_utc.minute} {run_time_utc.hour} * * *"


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


# The notification export's time is also its eligibility cut-off (ExportPolicyResource is given the same
# setting), so a notification created after a day's run goes out in the next day's file. A cron is part of
# the definitions Dagster serialises when the code location loads, before any resource exists: the time is
# read then, through the same EnvVar the runs' cut-off resolves (settings.py).
NOTIFICATION_EXPORT_TIME = dt.time.fromisoformat(
    NOTIFICATION_EXPORT_TIME_UTC.load_value() or NOTIFICATION_RUN_TIME_UTC.strftime("%H:%M")
)
