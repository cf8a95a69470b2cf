"""Collection names and the indexes this project relies on (it creates them itself)."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

from ..domain.streams import APP_RECORDS, APP_STREAM, NOTIFICATION_RECORDS, ExportStream
from .mongo import is_transient

# The record collections belong to their streams; they are named here beside the ledger's own for callers
# that need every collection the export touches.
__all__ = [
    "APP_RECORDS",
    "NOTIFICATION_RECORDS",
    "COUNTER",
    "EXPORT_BATCH",
    "EXPORT_FILE",
    "ESR_CONFIRMATION",
    "CHECK_STATE",
    "ensure_indexes",
]

COUNTER = "counter"
EXPORT_BATCH = "exportBatch"
EXPORT_FILE = "exportFile"
# One document per confirmation file read from ESR (APC, DCC), by name and checksum: what it answered,
# its counts, quarantined and unmatched lines, and whether it was alerted (storage/confirmations.py).
ESR_CONFIRMATION = "esrConfirmation"
# What an asset check remembers between evaluations (the previous INVALID_DATA count per deanery and file
# type): the export's own bookkeeping beside the ledger, never a field in upstream's record collections.
CHECK_STATE = "exportCheckState"


def ensure_indexes(database: Database, stream: ExportStream = APP_STREAM) -> list[str]:
    """Idempotent; cheap when the indexes exist already. Returns a note per index that could not be built.

    The indexes on the ledger's own collections guard the numbering and must exist: a failure there fails
    the run. Those on the records' collection only speed the export up, and the records are upstream's: data
    the export does not control (two records of one placement, say) must not stop every deanery's export
    by breaking an index build. Such a failure is reported and the export goes on. The reference index is
    therefore not unique: duplicates are found and set aside by the selection, naming their reference.
    """
    notes: list[str] = []
    records = database[stream.records_collection]
    _build_best_effort(notes, records, [(stream.reference_field, ASCENDING)], name=stream.reference_field)
    # The selection asks for the deanery's TO_EXPORT queue; the stale sensor, which builds no index itself,
    # for the queue across deaneries (the ``status`` index below).
    _build_best_effort(
        notes,
        records,
        [("deanery", ASCENDING), ("status", ASCENDING), (stream.anchor_field, ASCENDING)],
        name=f"deanery_status_{stream.anchor_field}",
    )
    _build_best_effort(notes, records, [("status", ASCENDING)], name="status")
    _build_best_effort(notes, records, [("exportedFileName", ASCENDING)], name="exportedFileName")
    files = database[EXPORT_FILE]
    # A sequence number names at most one file, whatever happens.
    files.create_index(
        [("fileType", ASCENDING), ("deanery", ASCENDING), ("seq", ASCENDING)],
        unique=True,
        name="fileType_deanery_seq_unique",
    )
    # Shared scope: a number names at most one file of any deanery (checked by the ledger), the highest
    # number of the whole stream.
    files.create_index([("fileType", ASCENDING), ("seq", ASCENDING)], name="fileType_seq")
    files.create_index(
        [("fileType", ASCENDING), ("deanery", ASCENDING), ("runDate", ASCENDING)],
        name="fileType_deanery_runDate",
    )
    database[EXPORT_BATCH].create_index(
        [("fileType", ASCENDING), ("deanery", ASCENDING), ("state", ASCENDING)],
        name="fileType_deanery_state",
    )
    return notes


def _build_best_effort(notes: list[str], collection: Collection, keys: list[tuple[str, int]], name: str) -> None:
    try:
        collection.create_index(keys, name=name)
    except OperationFailure as error:
        if is_transient(error):
            raise
        # An index on the same keys under another name (an earlier version's unique one, say) serves too.
        notes.append(
            f"index {name} on {collection.name} could not be built (code {error.code}); the export goes on without it"
        )
