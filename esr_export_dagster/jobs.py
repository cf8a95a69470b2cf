"""Jobs: what the schedules and the UI run, one per stream."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from .assets import app_export_file, app_record_selection, notification_export_file, notification_record_selection

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
