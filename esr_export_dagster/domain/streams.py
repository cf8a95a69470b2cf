"""The two daily streams TIS sends ESR per deanery, described once so one export machinery runs both.

APP files carry new applicants, DNC files notifications of change (esr-interface.md §4.1). They differ in
where their records live, what makes a record eligible and valid, and how a line is written; everything
else (partitions, the counter and batch protocol, retries, files, checks, alerts) is shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .app_file import APP_FILE_TYPE, render_app_file
from .esr_csv import RenderReport
from .notification_file import DNC_FILE_TYPE, render_notification_file
from .notifications import invalid_notification_fields, notification_generation_error
from .records import generation_error, invalid_mandatory_fields

APP_RECORDS = "generatedAppRecord"
NOTIFICATION_RECORDS = "notificationRecord"


def counter_id(file_type: str, deanery: str) -> str:
    """A deanery's key for one file type, ``APP_EOE``: its counter document in deanery scope (shared scope
    numbers from ``APP``, see ``domain/sequence.py``), and the key of per-deanery state such as check state."""
    return f"{file_type}_{deanery}"


@dataclass(frozen=True)
class ExportStream:
    file_type: str
    # Prefix of the stream's asset, job and schedule names ("app" -> app_export_file).
    name: str
    # What one record is, in plain words for logs and alerts.
    record_noun: str
    records_collection: str
    # The record's business id: unique, safe to log, and the second field of every line of its file.
    reference_field: str
    # The date eligibility is judged from.
    anchor_field: str
    invalid_fields: Callable[[Mapping[str, Any]], list[str]]
    generation_error: Callable[[list[str]], str]
    render_file: Callable[[Iterable[Mapping[str, Any]]], tuple[bytes, RenderReport]]
    # ESR quarantines an APP file with too many applicants for one post; notifications have no such limit.
    limits_records_per_post: bool
    # The anchor is the trainee's start date (applicants): once it has come, the trust may already have
    # hired the doctor by hand, so no run sends the record without a data engineer's decision.
    anchor_is_start_date: bool = False

    def counter_id(self, deanery: str) -> str:
        return counter_id(self.file_type, deanery)

    @property
    def selection_asset_name(self) -> str:
        """The asset that reports, per partition, which records the day's file must carry."""
        return f"{self.name}_record_selection"

    @property
    def file_asset_name(self) -> str:
        """The asset whose partitions are the deanery-day's files, written, marked and delivered."""
        return f"{self.name}_export_file"

    @property
    def job_name(self) -> str:
        """The job that materializes both assets of one partition (or a range of them)."""
        return f"daily_{self.name}_export_job"

    @property
    def schedule_name(self) -> str:
        return f"daily_{self.name}_export_schedule"

    @property
    def confirmation_asset_name(self) -> str:
        """The asset whose materializations are ESR's confirmation files answering this stream's files."""
        return f"{self.name}_esr_confirmation"

    @property
    def confirmation_job_name(self) -> str:
        """The job that reads one confirmation file."""
        return f"read_{self.name}_esr_confirmation"


APP_STREAM = ExportStream(
    file_type=APP_FILE_TYPE,
    name="app",
    record_noun="applicant record",
    records_collection=APP_RECORDS,
    reference_field="placementId",
    anchor_field="startDate",
    invalid_fields=invalid_mandatory_fields,
    generation_error=generation_error,
    render_file=render_app_file,
    limits_records_per_post=True,
    anchor_is_start_date=True,
)

NOTIFICATION_STREAM = ExportStream(
    file_type=DNC_FILE_TYPE,
    name="notification",
    record_noun="notification",
    records_collection=NOTIFICATION_RECORDS,
    reference_field="notificationId",
    anchor_field="createdDate",
    invalid_fields=invalid_notification_fields,
    generation_error=notification_generation_error,
    render_file=render_notification_file,
    limits_records_per_post=False,
)

STREAMS: tuple[ExportStream, ...] = (APP_STREAM, NOTIFICATION_STREAM)
