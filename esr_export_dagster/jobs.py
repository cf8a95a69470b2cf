"""Jobs: what the schedules and the UI run, one per stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetsDefinition, AssetSelection, define_asset_job

from .assets import app_export_file, app_record_selection, notification_export_file, notification_record_selection
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM, ExportStream

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

daily_app_export_job = define_asset_job(
    name="daily_app_export_job",
    description="Select one deanery-day's eligible applicant records and write its ESR APP file(s).",
    selection=AssetSelection.assets(app_record_selection, app_export_file),
)

daily_notification_export_job = define_asset_job(
    name="daily_notification_export_job",
    description="Select one deanery-day's eligible notifications and write its ESR DNC file.",
    selection=AssetSelection.assets(notification_record_selection, notification_export_file),
)

EXPORT_JOBS = (daily_app_export_job, daily_notification_export_job)
_JOB_BY_FILE_TYPE = {
    APP_STREAM.file_type: (daily_app_export_job, app_export_file),
    NOTIFICATION_STREAM.file_type: (daily_notification_export_job, notification_export_file),
}


def export_job(stream: ExportStream) -> UnresolvedAssetJobDefinition:
    """The stream's daily job (resolve it through the Definitions that serve it)."""
    return _JOB_BY_FILE_TYPE[stream.file_type][0]


def export_file_asset(stream: ExportStream) -> AssetsDefinition:
    """The stream's file asset, whose value is the per-partition run summary."""
    return _JOB_BY_FILE_TYPE[stream.file_type][1]
