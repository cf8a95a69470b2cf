"""Jobs: what the schedule and the UI run."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from .assets import app_export_file, app_record_selection

daily_app_export_job = define_asset_job(
    name="daily_app_export_job",
    description="Select one deanery-day's eligible applicant records and write its ESR APP file(s).",
    selection=AssetSelection.assets(app_record_selection, app_export_file),
)
