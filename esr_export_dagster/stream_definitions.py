"""One daily ESR export stream (APP or DNC) as Dagster definitions, read top-down.

A partition (run date, deanery) of ``<stream>_record_selection`` reports what the day's file must carry;
the same partition of ``<stream>_export_file`` opens a batch, takes its sequence numbers, writes and marks
the files and delivers them (ops.py, delivery_ops.py). Its checks verify the result against MongoDB, the
files, the drop and ESR's answers (checks.py, delivery_checks.py, confirmation_checks.py); the stream's job
materializes both assets, and its schedule launches one run per deanery every day (schedules.py). ESR's
answer to each file (an APC or DCC file) is read by ``<stream>_esr_confirmation``, one run per confirmation
file (confirmation_assets.py, launched by confirmation_sensor.py). ``definitions.py`` merges the streams.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import AssetSelection, Definitions, RetryPolicy, define_asset_job

from .assets import (
    APP_FILE_DESCRIPTION,
    APP_SELECTION_DESCRIPTION,
    NOTIFICATION_FILE_DESCRIPTION,
    NOTIFICATION_SELECTION_DESCRIPTION,
    build_export_file_asset,
    build_record_selection_asset,
)
from .checks import ExportFileCheck, build_export_file_checks, export_checks, left_behind_check, past_start_check
from .confirmation_assets import build_confirmation_asset, build_confirmation_job
from .confirmation_checks import confirmation_check
from .delivery_checks import delivery_check
from .delivery_ops import RUN_SUMMARY_IO_MANAGER_KEY, RunSummaryIOManager
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM, STREAMS, ExportStream
from .domain.window import DAILY_RUN_TIME_UTC
from .ops import EXPORT_RETRY_POLICY
from .schedules import NOTIFICATION_EXPORT_TIME, build_daily_export_schedule, daily_cron

# One object for both streams: Definitions.merge accepts a resource key twice only for the same object.
RUN_SUMMARY_IO_MANAGER = RunSummaryIOManager()


@dataclass(frozen=True)
class ExportStreamSpec:
    """What differs between the streams' definitions; everything else is built the same way for both."""

    stream: ExportStream
    selection_description: str
    file_description: str
    # The schedule's time of day (UTC), and how the schedule's description says it.
    daily_at: dt.time
    daily_at_note: str
    # Checks only this stream needs, beside the ones every stream's file asset carries.
    own_checks: Sequence[ExportFileCheck]
    job_description: str
    # The policy that carries the numbering through WriteConflicts on the counter; a test builds the stream
    # without it to show what it saves (the 2021 exporter had lost it).
    allocation_retry_policy: RetryPolicy | None = EXPORT_RETRY_POLICY


def build_export_stream_definitions(spec: ExportStreamSpec) -> Definitions:
    """The stream's selection asset, file asset (with its ops), checks, job and daily schedule, and the asset
    and job that read ESR's confirmations of its files."""
    stream = spec.stream
    record_selection = build_record_selection_asset(stream, spec.selection_description)
    export_file = build_export_file_asset(stream, record_selection, spec.file_description, spec.allocation_retry_policy)
    # One step for all of them: a step's set-up costs more than most checks (docs/performance.md).
    checks = build_export_file_checks(
        stream, [*spec.own_checks, *export_checks(stream), delivery_check(stream), confirmation_check(stream)]
    )
    job = define_asset_job(
        name=stream.job_name,
        description=spec.job_description,
        selection=AssetSelection.assets(record_selection, export_file),
    )
    schedule = build_daily_export_schedule(job.name, stream, daily_cron(spec.daily_at), spec.daily_at_note)
    confirmation = build_confirmation_asset(stream, export_file)
    return Definitions(
        assets=[record_selection, export_file, confirmation],
        asset_checks=[checks],
        jobs=[job, build_confirmation_job(stream, confirmation)],
        schedules=[schedule],
        resources={RUN_SUMMARY_IO_MANAGER_KEY: RUN_SUMMARY_IO_MANAGER},
    )


APP_EXPORT_SPEC = ExportStreamSpec(
    stream=APP_STREAM,
    selection_description=APP_SELECTION_DESCRIPTION,
    file_description=APP_FILE_DESCRIPTION,
    daily_at=DAILY_RUN_TIME_UTC,
    daily_at_note=f"Every day at {DAILY_RUN_TIME_UTC:%H:%M} UTC",
    own_checks=[past_start_check()],
    job_description="Select one deanery-day's eligible applicant records and write its ESR APP file(s).",
)
APP_EXPORT = build_export_stream_definitions(APP_EXPORT_SPEC)

NOTIFICATION_EXPORT_SPEC = ExportStreamSpec(
    stream=NOTIFICATION_STREAM,
    selection_description=NOTIFICATION_SELECTION_DESCRIPTION,
    file_description=NOTIFICATION_FILE_DESCRIPTION,
    daily_at=NOTIFICATION_EXPORT_TIME,
    daily_at_note=f"Every day at {NOTIFICATION_EXPORT_TIME:%H:%M} UTC (by default an hour after the APP export)",
    own_checks=[left_behind_check()],
    job_description="Select one deanery-day's eligible notifications and write its ESR DNC file.",
)
NOTIFICATION_EXPORT = build_export_stream_definitions(NOTIFICATION_EXPORT_SPEC)


def _jobs_named(names: set[str]) -> tuple:
    return tuple(job for streams in (APP_EXPORT, NOTIFICATION_EXPORT) for job in streams.jobs if job.name in names)


# The sensors that request or watch runs target these very job objects.
EXPORT_JOBS = _jobs_named({stream.job_name for stream in STREAMS})
CONFIRMATION_JOBS = _jobs_named({stream.confirmation_job_name for stream in STREAMS})
