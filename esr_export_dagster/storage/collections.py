"""Collection names and the indexes this project relies on (it creates them itself)."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.database import Database

APP_RECORDS = "generatedAppRecord"
COUNTER = "counter"
EXPORT_BATCH = "exportBatch"
EXPORT_FILE = "exportFile"


def ensure_indexes(database: Database, records_collection: str = APP_RECORDS) -> None:
    """Idempotent; cheap when the indexes exist already."""
    records = database[records_collection]
    records.create_index([("placementId", ASCENDING)], unique=True, name="placementId_unique")
    # The selection and the stale-record sensor both ask "TO_EXPORT in deanery X, start date in a range".
    records.create_index(
        [("deanery", ASCENDING), ("status", ASCENDING), ("startDate", ASCENDING)],
        name="deanery_status_startDate",
    )
    # The stale-record sensor asks for the TO_EXPORT queue across deaneries every 15 minutes, over a
    # collection that is almost entirely EXPORTED.
    records.create_index([("status", ASCENDING)], name="status")
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
