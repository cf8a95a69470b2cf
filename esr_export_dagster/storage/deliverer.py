"""Delivery, the last step of an export: every written file of a deanery, put into ESR's drop once.

A file is due for delivery from the moment its file ledger entry is created (``undelivered: true``, set
with the entry, so files written before delivery existed are never sent again) and is delivered once its
entry is ``COMPLETE``: its bytes are final and archived in ESR_EXPORT_DIR. Delivery reads the archived
bytes, checks them against the ledger's SHA-256 and size, puts them (``put_if_absent``) and then records
``delivered`` in the entry. A crash between the put and the record is harmless: the next attempt finds the
same bytes at the destination and records success without a second object.

Files go oldest number first, so a run after a failed delivery sends the backlog before its own files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from ..domain.esr_csv import parse_export_file_name
from . import protocol
from .collections import EXPORT_FILE
from .delivery import Destination, Receipt
from .errors import CorruptExportStateError, ExportFileConflictError
from .export_dir import ExportDirectory
from .ledger import DELIVERED, FILE_COMPLETE, UNDELIVERED
from .mongo import TransientExportError

RESENDS = "resends"
# Each failed compare-and-set means another re-send of the file was recorded meanwhile.
_MAX_RESEND_RECORD_ATTEMPTS = 20


@dataclass(frozen=True)
class Delivered:
    name: str
    deanery: str
    run_date: dt.date
    sequence: int
    receipt: Receipt

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "destination": self.receipt.destination,
            "location": self.receipt.location,
            "size": self.receipt.size,
            "sha256": self.receipt.sha256,
            "etag": self.receipt.etag,
            "already_there": self.receipt.already_there,
        }


@dataclass
class DeliveryOutcome:
    delivered: list[Delivered] = field(default_factory=list)
    # File name -> why it was not delivered (a name taken by other bytes, an archive that does not match).
    refused: dict[str, str] = field(default_factory=dict)


def files_undelivered_since(database: Database, started_before: dt.datetime) -> list[str]:
    """The names of every stream's files started before a (naive UTC) time and still not in ESR's drop."""
    return sorted(
        str(entry["_id"])
        for entry in database[EXPORT_FILE].find({UNDELIVERED: True, "startedAt": {"$lt": started_before}}, {"_id": 1})
    )


@dataclass
class Deliverer:
    database: Database
    directory: ExportDirectory
    destination: Destination
    file_type: str

    def undelivered(self, deaneries: Iterable[str]) -> list[Mapping[str, Any]]:
        """The deaneries' written, undelivered files, oldest number first per deanery."""
        return list(
            self.database[EXPORT_FILE]
            .find(
                {
                    "fileType": self.file_type,
                    "deanery": {"$in": sorted(set(deaneries))},
                    UNDELIVERED: True,
                    "state": FILE_COMPLETE,
                },
                {"seq": 1, "deanery": 1, "runDate": 1, "sha256": 1, "size": 1},
            )
            .sort([("deanery", 1), ("seq", 1)])
        )

    def deliver_backlog(self, deaneries: Iterable[str]) -> DeliveryOutcome:
        """Deliver every due file of ``deaneries``. A file refused for its own reason is reported and the rest
        go on; a destination that is down stops here (``DeliveryUnavailableError``), the rest waits for a retry."""
        outcome = DeliveryOutcome()
        for entry in self.undelivered(deaneries):
            name = str(entry["_id"])
            try:
                content = self.archived_bytes(entry)
                receipt = self.destination.put_if_absent(name, content)
            except (ExportFileConflictError, CorruptExportStateError) as error:
                outcome.refused[name] = str(error)
                continue
            self._record(entry, receipt)
            outcome.delivered.append(_delivered(entry, receipt))
        return outcome

    def resend(self, name: str) -> Delivered:
        """Put an archived file again at ESR's request, after checking it against the ledger; recorded."""
        entry = self.database[EXPORT_FILE].find_one({"_id": name, "fileType": self.file_type})
        if entry is None or entry.get("state") != FILE_COMPLETE:
            state = "holds no file" if entry is None else f"holds {name} as {entry.get('state')}, not written yet,"
            raise CorruptExportStateError(f"The file ledger {state} named {name}: nothing was sent.")
        content = self.archived_bytes(entry)
        receipt = self.destination.put_if_absent(name, content)
        self._record_resend(name, _receipt_document(receipt) | {"at": _now_text()})
        if entry.get(UNDELIVERED):
            self._record(entry, receipt)
        return _delivered(entry, receipt)

    def archived_bytes(self, entry: Mapping[str, Any]) -> bytes:
        """The file's bytes from ESR_EXPORT_DIR, refused unless they are what the ledger recorded."""
        name = str(entry["_id"])
        try:
            content = self.directory.read(name)
        except OSError:
            raise CorruptExportStateError(
                f"{name} is COMPLETE in the file ledger but cannot be read from ESR_EXPORT_DIR {str(self.directory.path)!r}:"
                " it was not delivered. Restore it from the archive's backup."
            ) from None
        sha256 = hashlib.sha256(content).hexdigest()
        if sha256 != entry.get("sha256") or len(content) != entry.get("size"):
            raise CorruptExportStateError(
                f"{name} in ESR_EXPORT_DIR does not match the file ledger (SHA-256 {sha256[:12]}..., {len(content)} "
                f"bytes; the ledger says {str(entry.get('sha256'))[:12]}..., {entry.get('size')} bytes): it was "
                "changed after it was written and was not delivered. Restore the file as written."
            )
        return content

    def _record_resend(self, name: str, resend: dict[str, Any]) -> None:
        """Append to the entry's re-sends with a compare-and-set on their count. Not ``$push``: the local
        stand-in stores a pushed sub-document as JSON text."""
        for _ in range(_MAX_RESEND_RECORD_ATTEMPTS):
            entry = self.database[EXPORT_FILE].find_one({"_id": name}, {RESENDS: 1, "resendCount": 1}) or {}
            count = entry.get("resendCount", 0)
            unchanged: dict[str, Any] = {"_id": name, "resendCount": count if count else {"$exists": False}}
            recorded = self.database[EXPORT_FILE].update_one(
                unchanged,
                {
                    "$set": {RESENDS: [*entry.get(RESENDS, []), resend], "resendCount": count + 1},
                    "$currentDate": {"lastResentAt": True},
                },
            )
            if recorded.modified_count == 1:
                return
        raise TransientExportError(f"{name}: other re-sends kept recording while this one did")

    def _record(self, entry: Mapping[str, Any], receipt: Receipt) -> None:
        self.database[EXPORT_FILE].update_one(
            {"_id": entry["_id"], UNDELIVERED: True},
            {
                "$set": {DELIVERED: _receipt_document(receipt)},
                "$unset": {UNDELIVERED: ""},
                # Server time, with $currentDate: the local stand-in stores a $set datetime as a string.
                "$currentDate": {"deliveredAt": True},
            },
            comment=protocol.RECORD_DELIVERY,
        )


def _delivered(entry: Mapping[str, Any], receipt: Receipt) -> Delivered:
    name = str(entry["_id"])
    return Delivered(name, str(entry["deanery"]), parse_export_file_name(name).run_date, int(entry["seq"]), receipt)


def _receipt_document(receipt: Receipt) -> dict[str, Any]:
    return {
        "destination": receipt.destination,
        "location": receipt.location,
        "size": receipt.size,
        "sha256": receipt.sha256,
        "etag": receipt.etag,
        "alreadyThere": receipt.already_there,
    }


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
