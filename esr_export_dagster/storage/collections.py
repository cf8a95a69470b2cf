"""Collection names and the indexes this project relies on (it creates them itself)."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.database import Database

from ..domain.streams import APP_RECORDS, APP_STREAM, NOTIFICATION_RECORDS, ExportStream

# The record collections belong to their streams; they are named here beside the ledger's own for callers
# that need every collection the export touches.
__all__ = [
    "APP_RECORDS",
    "NOTIFICATION_RECORDS",
    "COUNTER",
    "EXPORT_BATCH",
    "EXPORT_FILE",
    "ensure_indexes",
    "ensure_queue_index",
]

COUNTER = "counter"
EXPORT_BATCH = "exportBatch"
EXPORT_FILE = "exportFile"


def ensure_queue_index(database: Database, stream: ExportStream) -> None:
    """The stale-record sensor asks for the TO_EXPORT queue across deaneries every 15 minutes, over a
    collection that is almost entirely EXPORTED. Idempotent; the only index the sensor builds."""
    database[stream.records_collection].create_index([("status", ASCENDING)], name="status")


def ensure_indexes(database: Database, stream: ExportStream = APP_STREAM) -> None:
    """Idempotent; cheap when the indexes exist already."""
    records = database[stream.records_collection]
    # Only numeric references are constrained: a record without one is invalid data for the export to
    # report, and TIS must still be able to write two of them.
    records.create_index(
        [(stream.reference_field, ASCENDING)],
        unique=True,
        name=f"{stream.reference_field}_numeric_unique",
        partialFilterExpression={stream.reference_field: {"$type": "number"}},
    )
    # The selection asks "TO_EXPORT in deanery X, start (or creation) date in a range".
    records.create_index(
        [("deanery", ASCENDING), ("status", ASCENDING), (stream.anchor_field, ASCENDING)],
        name=f"deanery_status_{stream.anchor_field}",
    )
    ensure_queue_index(database, stream)
    records.create_index([("exportedFileName", ASCENDING)], name="exportedFileName")
    files = database[EXPORT_FILE]
    # A sequence number names at most one file, whatever happens.
    files.create_index(
        [("fileType", ASCENDING), ("deanery", ASCENDING), ("seq", ASCENDING)],
        unique=True,
        name="fileType_deanery_seq_unique",
    )
    files.create_index(
        [("fileType", ASCENDING), ("deanery", ASCENDING), ("runDate", ASCENDING)],
        name="fileType_deanery_runDate",
    )
    database[EXPORT_BATCH].create_index(
        [("fileType", ASCENDING), ("deanery", ASCENDING), ("state", ASCENDING)],
        name="fileType_deanery_state",
    )
