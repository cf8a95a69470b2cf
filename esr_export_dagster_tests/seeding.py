"""Seeding helpers: the records a test puts in MongoDB before it runs anything (conftest.ExportHarness runs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from esr_export_dagster.domain.streams import APP_STREAM, ExportStream
from esr_export_dagster.domain.window import NOTIFICATION_RUN_TIME_UTC
from esr_export_dagster.local.demo_data import applicant_record, notification_record
from esr_export_dagster.storage.collections import APP_RECORDS, NOTIFICATION_RECORDS


@dataclass(kw_only=True)
class RecordSeeder:
    """Writes applicant records and notifications into ``database``, with ids unique within the test."""

    database: Database
    # The stream the stream-neutral helpers (add_due, break_record, ...) work on.
    stream: ExportStream = APP_STREAM
    placement_ids: Iterator[int] = field(default_factory=lambda: iter(range(500_000, 10_000_000)))
    notification_ids: Iterator[int] = field(default_factory=lambda: iter(range(800_000, 10_000_000)))

    @property
    def records(self) -> Collection:
        return self.database[self.stream.records_collection]

    def add(self, deanery: str, start: dt.date, count: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
        """Applicant records starting on ``start`` (APP-only tests)."""
        records = [applicant_record(next(self.placement_ids), deanery, start, **kwargs) for _ in range(count)]
        self.database[APP_RECORDS].insert_many(records)
        return records

    def add_notifications(
        self, deanery: str, created: dt.datetime, count: int = 1, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Notifications created at ``created`` (naive UTC); title code and payload by keyword."""
        records = [notification_record(next(self.notification_ids), deanery, created, **kwargs) for _ in range(count)]
        self.database[NOTIFICATION_RECORDS].insert_many(records)
        return records

    # -- stream-neutral helpers: the same invariant test runs for APP and DNC -------------------------

    def add_due(self, deanery: str, run_date: dt.date, count: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
        """Records of this stream that ``run_date`` is the first day to export."""
        if self.stream is APP_STREAM:
            return self.add(deanery, run_date + dt.timedelta(weeks=13, days=-1), count, **kwargs)
        created = dt.datetime.combine(run_date - dt.timedelta(days=1), NOTIFICATION_RUN_TIME_UTC) + dt.timedelta(
            hours=1
        )
        return self.add_notifications(deanery, created, count, **kwargs)

    def add_not_yet_due(self, deanery: str, run_date: dt.date) -> list[dict[str, Any]]:
        """A record just outside ``run_date``'s eligibility: the next day's."""
        if self.stream is APP_STREAM:
            return self.add(deanery, run_date + dt.timedelta(weeks=13))
        return self.add_notifications(deanery, dt.datetime.combine(run_date, NOTIFICATION_RUN_TIME_UTC))

    def break_record(self, record: dict[str, Any]) -> list[str]:
        """Remove mandatory values from a stored record; returns the field names the export must report."""
        fields = ["applicant.dob"] if self.stream is APP_STREAM else ["nextAppointmentTraineeLastName"]
        self.records.update_one({"_id": record["_id"]}, {"$unset": {name: "" for name in fields}})
        return fields

    def reference(self, record: dict[str, Any]) -> int:
        return record[self.stream.reference_field]
