"""Applying ESR's confirmations: each referenced record's ``esrOutcome``, the file ledger's record of the
confirmation, and one ``esrConfirmation`` document per file read.

Every effect is idempotent: the time recorded is the one the confirmation was first read at (kept in its
``esrConfirmation`` document), so reading the same file again writes the same values and changes nothing.
ESR's message text can quote names: it is kept in the record's ``esrOutcome`` only, never in the
confirmation document, the ledger, or anything returned for logs, metadata and alerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from ..domain.confirmation_file import (
    LOADED,
    LOADED_WITH_WARNINGS,
    OUTCOME_SEVERITY,
    REJECTED,
    ConfirmationLine,
    Holding,
    ParsedConfirmation,
    match_confirmation,
)
from ..domain.streams import ExportStream
from .collections import ESR_CONFIRMATION
from .ledger import record_confirmation

APPLIED = "APPLIED"
UNREADABLE = "UNREADABLE"
# Set once the alert sensor has announced a confirmation's rejections, or an unreadable file.
ALERTED = "alerted"


def confirmation_id(name: str, sha256: str) -> str:
    return f"{name}@{sha256}"


@dataclass
class ConfirmationResult:
    """What a confirmation did, in ids and counts only (safe for logs, metadata and alerts)."""

    name: str
    sha256: str
    deanery: str
    file_type: str
    export_file: str | None
    received_at: str
    counts: dict[str, int]
    rejections: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)


def holdings(database: Database, stream: ExportStream, references: Iterable[int]) -> dict[int, list[Holding]]:
    """The exported records holding each reference, with the export file and deanery of each."""
    found: dict[int, list[Holding]] = {}
    wanted = sorted(set(references))
    if not wanted:
        return found
    for record in database[stream.records_collection].find(
        {stream.reference_field: {"$in": wanted}, "exportedFileName": {"$exists": True}},
        {stream.reference_field: 1, "exportedFileName": 1, "deanery": 1},
    ):
        found.setdefault(record[stream.reference_field], []).append(
            Holding(record["_id"], str(record["exportedFileName"]), str(record.get("deanery")))
        )
    return found


def already_read(database: Database, name: str, sha256: str) -> bool:
    return database[ESR_CONFIRMATION].find_one({"_id": confirmation_id(name, sha256)}, {"_id": 1}) is not None


def apply_confirmation(
    database: Database, stream: ExportStream, parsed: ParsedConfirmation, sha256: str, now: dt.datetime
) -> ConfirmationResult:
    """Record ESR's answer on every matched record and on the export file's ledger entry; idempotent."""
    name = parsed.file.name
    received_at = _first_read_at(database, name, sha256, parsed, now)
    matching = match_confirmation(parsed, holdings(database, stream, parsed.references), stream.file_type)
    lines_of: dict[object, list[ConfirmationLine]] = {}
    for line, record_id in matching.matched:
        lines_of.setdefault(record_id, []).append(line)
    counts = {LOADED: 0, LOADED_WITH_WARNINGS: 0, REJECTED: 0}
    rejections = []
    for record_id, lines in lines_of.items():
        outcome = _outcome(lines, name, sha256, matching.export_file, received_at)
        counts[outcome["status"]] += 1
        database[stream.records_collection].update_one({"_id": record_id}, {"$set": {"esrOutcome": outcome}})
        if outcome["status"] == REJECTED:
            rejections.append(
                {
                    "reference": lines[0].reference,
                    "deanery": parsed.file.deanery,
                    "exportFile": matching.export_file,
                    "messageType": outcome["messageType"] or "none",
                }
            )
    summary = {
        "loaded": counts[LOADED],
        "warnings": counts[LOADED_WITH_WARNINGS],
        "failed": counts[REJECTED],
        "unmatched": len(matching.unmatched),
        "quarantined": len(parsed.quarantined),
    }
    unmatched = [{"line": u.line_number, "reference": u.reference, "reason": u.reason} for u in matching.unmatched]
    quarantined = [{"line": q.line_number, "reason": q.reason} for q in parsed.quarantined]
    rejections.sort(key=lambda r: r["reference"])
    if matching.export_file is not None:
        record_confirmation(
            database,
            matching.export_file,
            name.removesuffix(".DAT"),
            {"file": name, "sha256": sha256, "receivedAt": received_at, **summary},
        )
    database[ESR_CONFIRMATION].update_one(
        {"_id": confirmation_id(name, sha256)},
        {
            "$set": {
                "state": APPLIED,
                "exportFile": matching.export_file,
                "counts": summary,
                "rejections": rejections,
                "unmatched": unmatched,
                "quarantined": quarantined,
            }
        },
    )
    return ConfirmationResult(
        name=name,
        sha256=sha256,
        deanery=parsed.file.deanery,
        file_type=parsed.file.file_type,
        export_file=matching.export_file,
        received_at=received_at,
        counts=summary,
        rejections=rejections,
        unmatched=unmatched,
        quarantined=quarantined,
    )


def record_unreadable(
    database: Database,
    name: str,
    deanery: str,
    file_type: str,
    sha256: str,
    reason: str,
    moved_to: str | None,
    now: dt.datetime,
) -> bool:
    """Mark a file that cannot be read at all (and where it was moved, if it could be); True the first time."""
    written = database[ESR_CONFIRMATION].update_one(
        {"_id": confirmation_id(name, sha256)},
        {
            "$setOnInsert": {
                "name": name,
                "sha256": sha256,
                "deanery": deanery,
                "fileType": file_type,
                "state": UNREADABLE,
                "reason": reason,
                "movedTo": moved_to,
                "receivedAt": _text(now),
            }
        },
        upsert=True,
    )
    return written.upserted_id is not None


def unalerted(database: Database) -> list[Mapping[str, Any]]:
    """Confirmations whose rejections, or unreadable files, have not been announced yet."""
    return sorted(
        (
            document
            for document in database[ESR_CONFIRMATION].find({ALERTED: {"$exists": False}})
            if document.get("state") == UNREADABLE or document.get("rejections")
        ),
        key=lambda document: str(document["_id"]),
    )


def mark_alerted(database: Database, ids: Iterable[str], now: dt.datetime) -> None:
    for document_id in ids:
        database[ESR_CONFIRMATION].update_one({"_id": document_id}, {"$set": {ALERTED: _text(now)}})


def _first_read_at(database: Database, name: str, sha256: str, parsed: ParsedConfirmation, now: dt.datetime) -> str:
    database[ESR_CONFIRMATION].update_one(
        {"_id": confirmation_id(name, sha256)},
        {
            "$setOnInsert": {
                "name": name,
                "sha256": sha256,
                "deanery": parsed.file.deanery,
                "fileType": parsed.file.file_type,
                "receivedAt": _text(now),
            }
        },
        upsert=True,
    )
    document = database[ESR_CONFIRMATION].find_one({"_id": confirmation_id(name, sha256)}, {"receivedAt": 1})
    return str(document["receivedAt"]) if document else _text(now)


def _outcome(
    lines: list[ConfirmationLine], name: str, sha256: str, export_file: str | None, received_at: str
) -> dict[str, Any]:
    worst = max(lines, key=lambda line: OUTCOME_SEVERITY[line.outcome])
    given = next((line for line in lines if line.applicant_number is not None), worst)
    return {
        "status": worst.outcome,
        "messageType": worst.message_type,
        "messageText": worst.message_text,
        "messages": [{"messageType": line.message_type, "messageText": line.message_text} for line in lines],
        "applicantNumber": given.applicant_number,
        "assignmentId": given.assignment_id,
        "esrVacancyId": worst.esr_vacancy_id,
        "confirmationFile": name,
        "confirmationSha256": sha256,
        "exportFile": export_file,
        "at": received_at,
    }


def _text(now: dt.datetime) -> str:
    # Text, not a datetime: the local stand-in stores a $set datetime as a string anyway.
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
