"""The records the stale-record sensor and the asset checks look at: TO_EXPORT applicants by start date,
TO_EXPORT notifications by creation time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from pymongo.database import Database

from ..domain.records import TO_EXPORT
from ..domain.stale_records import PendingNotification, PendingRecord
from .collections import APP_RECORDS, NOTIFICATION_RECORDS


def pending_records(
    database: Database,
    starting_before: dt.date,
    deanery: str | None = None,
    records_collection: str = APP_RECORDS,
) -> Iterator[PendingRecord]:
    """``TO_EXPORT`` records starting before a date, or whose start date is not a date: ids, deanery and start
    date only.

    The query is an equality on ``status`` alone, served by its own index: the TO_EXPORT records are the
    small live queue of a collection that is almost entirely EXPORTED, and the local stand-in can only use an
    index for equalities (its range scans over a million records take seconds), so dates are compared here.
    """
    query: dict = {"status": TO_EXPORT}
    if deanery is not None:
        query["deanery"] = deanery
    limit = dt.datetime.combine(starting_before, dt.time.min)
    for document in database[records_collection].find(query, {"deanery": 1, "placementId": 1, "startDate": 1}):
        start = document.get("startDate")
        if isinstance(start, dt.datetime) and start >= limit:
            continue
        placement = document.get("placementId")
        yield PendingRecord(
            deanery=_deanery(document),
            placement_id=_reference(placement),
            start_date=start.date() if isinstance(start, dt.datetime) else None,
        )


def pending_notifications(database: Database, created_before: dt.datetime) -> Iterator[PendingNotification]:
    """``TO_EXPORT`` notifications created before a (naive UTC) time, or whose creation time is not a date:
    ids, deanery and creation time only.

    Like ``pending_records``, an equality on ``status`` alone, with the times compared here.
    """
    for document in database[NOTIFICATION_RECORDS].find(
        {"status": TO_EXPORT}, {"deanery": 1, "notificationId": 1, "createdDate": 1}
    ):
        created = document.get("createdDate")
        if isinstance(created, dt.datetime) and created >= created_before:
            continue
        yield PendingNotification(
            deanery=_deanery(document),
            notification_id=_reference(document.get("notificationId")),
            created=created if isinstance(created, dt.datetime) else None,
        )


def _deanery(document: dict) -> str:
    # Anything but a string (a number, a sub-document) is as unknown as a missing code.
    deanery = document.get("deanery")
    return deanery if isinstance(deanery, str) and deanery else "?"


def _reference(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
