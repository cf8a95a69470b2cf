"""The 13:00 UTC daily export: one run per deanery, each on its own partition."""

from dagster import DefaultScheduleStatus, RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from .domain.deaneries import DEANERIES
from .domain.window import DAILY_RUN_TIME_UTC
from .jobs import daily_app_export_job
from .partitions import DEANERY_TAG, export_partition_key

APP_EXPORT_CRON = f"{DAILY_RUN_TIME_UTC.minute} {DAILY_RUN_TIME_UTC.hour} * * *"


def build_app_export_schedule(
    cron_schedule: str, name: str = "daily_app_export_schedule", description: str | None = None
) -> ScheduleDefinition:
    """The schedule's run requests on any cron: the production-like daemon tests tick it every minute."""

    @schedule(
        name=name,
        job=daily_app_export_job,
        cron_schedule=cron_schedule,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def app_export_schedule(context: ScheduleEvaluationContext):
        run_date = context.scheduled_execution_time.date()
        for deanery in DEANERIES:
            yield RunRequest(
                # Stable per day and deanery: a re-evaluated tick never launches the same export twice.
                run_key=f"app-{run_date.isoformat()}-{deanery}",
                partition_key=export_partition_key(run_date, deanery),
                tags={DEANERY_TAG: deanery},
            )

    return app_export_schedule


daily_app_export_schedule = build_app_export_schedule(
    APP_EXPORT_CRON,
    description="Every day at 13:00 UTC, export each deanery's APP file for that day (one run per deanery).",
)
