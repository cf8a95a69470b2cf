"""The per-deanery export ledger: sequence counter, open batch and file ledger, without transactions.

Why this shape (see docs/export-protocol.md for the whole argument):

* One ``counter`` document per deanery and file type (``APP_EOE``). Every state change of a deanery's
  export is a single-document compare-and-set on it, so deaneries never contend with each other (the
  2021 WriteConflicts came from all deaneries hitting one counter at once) and no multi-document
  transaction is needed: they are unsafe on the local stand-in and absent on a standalone server.
* A deanery has at most one *open batch*: the frozen plan of the files a run is about to write. It is
  opened only if the counter's ``version`` still equals the one the plan was read at (optimistic
  concurrency), so a plan can never include a record another batch exported in the meantime.
* Sequence numbers are taken for exactly the planned files, in one compare-and-set, only after the plan
  is frozen: a number is never taken for nothing and never taken twice. Once taken, the batch stays open
  until every file is written and its records marked; whoever finds it open finishes it first, so a
  killed run's file is completed under the same name with the same records.
* Every step is idempotent, so retries, lost acknowledgements and two runs finishing the same batch at
  once all converge on the same files and record states.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

from bson import Binary, ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..domain.esr_csv import export_file_name
from ..domain.file_plan import PlannedFile
from ..domain.streams import counter_id
from .collections import COUNTER, EXPORT_BATCH, EXPORT_FILE

PLANNED = "PLANNED"
NUMBERED = "NUMBERED"
CLOSED = "CLOSED"
ABANDONED = "ABANDONED"

FILE_WRITING = "WRITING"
FILE_COMPLETE = "COMPLETE"

_OBJECT_ID_BYTES = 12


class BatchNotOpenError(RuntimeError):
    """The batch is no longer the deanery's open batch (someone finished and closed it)."""


@dataclass(frozen=True)
class CounterState:
    counter_id: str
    exists: bool
    seq: int
    version: int | None
    open_batch: Mapping[str, Any] | None


@dataclass(frozen=True)
class BatchFile:
    sequence: int
    name: str
    run_date: dt.date
    record_ids: tuple[Hashable, ...]
    largest_post_count: int


@dataclass(frozen=True)
class Batch:
    batch_id: str
    file_type: str
    deanery: str
    run_id: str
    state: str
    first_sequence: int | None
    planned: tuple[PlannedFile, ...]

    @property
    def files(self) -> list[BatchFile]:
        if self.first_sequence is None:
            raise BatchNotOpenError(f"Batch {self.batch_id} has no sequence numbers yet")
        return [
            BatchFile(
                sequence=self.first_sequence + index,
                name=export_file_name(self.deanery, self.file_type, planned.run_date, self.first_sequence + index),
                run_date=planned.run_date,
                record_ids=planned.record_ids,
                largest_post_count=planned.largest_post_count,
            )
            for index, planned in enumerate(self.planned)
        ]


@dataclass
class ExportLedger:
    database: Database
    file_type: str
    clock: Any = field(default=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))

    def counter_id(self, deanery: str) -> str:
        return counter_id(self.file_type, deanery)

    # -- counter ---------------------------------------------------------------------------------

    def read_counter(self, deanery: str) -> CounterState:
        counter_id = self.counter_id(deanery)
        document = self.database[COUNTER].find_one({"_id": counter_id})
        if document is None:
            return CounterState(counter_id, False, 0, None, None)
        return CounterState(
            counter_id=counter_id,
            exists=True,
            seq=int(document.get("seq") or 0),
            version=document.get("version"),
            open_batch=document.get("openBatch"),
        )

    def try_open_batch(
        self, deanery: str, read_at: CounterState, plan: Sequence[PlannedFile], run_id: str
    ) -> Batch | None:
        """Open a batch for ``plan`` if nothing changed since ``read_at``; ``None`` if something did."""
        if not plan:
            raise ValueError("An empty plan takes no batch: nothing to number")
        batch_id = uuid.uuid4().hex
        self.database[EXPORT_BATCH].insert_one(
            {
                "_id": batch_id,
                "fileType": self.file_type,
                "deanery": deanery,
                "runId": run_id,
                "state": PLANNED,
                "createdAt": self.clock(),
                "files": [_planned_to_document(planned) for planned in plan],
            }
        )
        reference = {
            "id": batch_id,
            "runId": run_id,
            "state": PLANNED,
            "fileCount": len(plan),
            "openedAt": self.clock(),
        }
        if read_at.exists:
            version_filter: Any = read_at.version if read_at.version is not None else {"$exists": False}
            opened = self.database[COUNTER].update_one(
                {"_id": read_at.counter_id, "openBatch": None, "version": version_filter},
                {"$set": {"openBatch": reference}},
            ).modified_count == 1
        else:
            try:
                self.database[COUNTER].insert_one(
                    {"_id": read_at.counter_id, "seq": 0, "version": 0, "openBatch": reference}
                )
                opened = True
            except DuplicateKeyError:
                opened = False
        if not opened:
            self.database[EXPORT_BATCH].update_one({"_id": batch_id}, {"$set": {"state": ABANDONED}})
            return None
        return self.load_batch(batch_id)

    def number_batch(self, deanery: str, batch_id: str) -> Batch:
        """Take the sequence numbers of an open batch's files: one compare-and-set, idempotent."""
        while True:
            counter = self.read_counter(deanery)
            reference = counter.open_batch
            if reference is None or reference.get("id") != batch_id:
                batch = self.load_batch(batch_id)
                if batch.first_sequence is not None:
                    return batch
                raise BatchNotOpenError(f"Batch {batch_id} of {deanery} is not open")
            if reference["state"] == NUMBERED:
                first_sequence = int(reference["firstSeq"])
                break
            file_count = int(reference["fileCount"])
            taken = self.database[COUNTER].update_one(
                {
                    "_id": counter.counter_id,
                    "openBatch.id": batch_id,
                    "openBatch.state": PLANNED,
                    "seq": counter.seq,
                },
                {
                    "$set": {
                        "seq": counter.seq + file_count,
                        "openBatch.state": NUMBERED,
                        "openBatch.firstSeq": counter.seq + 1,
                    }
                },
            )
            if taken.modified_count == 1:
                first_sequence = counter.seq + 1
                break
        self.database[EXPORT_BATCH].update_one(
            {"_id": batch_id, "state": PLANNED}, {"$set": {"state": NUMBERED, "firstSeq": first_sequence}}
        )
        return self.load_batch(batch_id)

    def close_batch(self, deanery: str, batch_id: str) -> None:
        self.database[COUNTER].update_one(
            {"_id": self.counter_id(deanery), "openBatch.id": batch_id},
            {"$set": {"openBatch": None}, "$inc": {"version": 1}},
        )
        self.database[EXPORT_BATCH].update_one(
            {"_id": batch_id}, {"$set": {"state": CLOSED}, "$currentDate": {"closedAt": True}}
        )

    # -- batches ---------------------------------------------------------------------------------

    def load_batch(self, batch_id: str) -> Batch:
        document = self.database[EXPORT_BATCH].find_one({"_id": batch_id})
        if document is None:
            raise BatchNotOpenError(f"Batch {batch_id} does not exist")
        return Batch(
            batch_id=batch_id,
            file_type=document["fileType"],
            deanery=document["deanery"],
            run_id=document["runId"],
            state=document["state"],
            first_sequence=document.get("firstSeq"),
            planned=tuple(_planned_from_document(planned) for planned in document["files"]),
        )

    # -- file ledger -----------------------------------------------------------------------------

    def record_file_started(self, batch: Batch, file: BatchFile) -> None:
        self.database[EXPORT_FILE].update_one(
            {"_id": file.name},
            {
                "$setOnInsert": {
                    "fileType": self.file_type,
                    "deanery": batch.deanery,
                    "seq": file.sequence,
                    "runDate": _midnight(file.run_date),
                    "batchId": batch.batch_id,
                    "runId": batch.run_id,
                    "plannedRecordCount": len(file.record_ids),
                    "largestPostCount": file.largest_post_count,
                    "state": FILE_WRITING,
                    "startedAt": self.clock(),
                }
            },
            upsert=True,
        )

    def record_file_complete(self, file: BatchFile, line_count: int, sha256: str, size: int) -> None:
        # The file's records are those marked with its name (and, planned, in its batch): not repeated here,
        # so that reading the ledger stays cheap.
        self.database[EXPORT_FILE].update_one(
            {"_id": file.name},
            {
                "$set": {
                    "state": FILE_COMPLETE,
                    "lineCount": line_count,
                    "sha256": sha256,
                    "size": size,
                },
                "$currentDate": {"completedAt": True},
            },
        )

    def files_for(self, deanery: str, run_date: dt.date) -> list[Mapping[str, Any]]:
        return list(
            self.database[EXPORT_FILE]
            .find({"fileType": self.file_type, "deanery": deanery, "runDate": _midnight(run_date)})
            .sort("seq", 1)
        )


def _planned_to_document(planned: PlannedFile) -> dict[str, Any]:
    return {
        "runDate": _midnight(planned.run_date),
        "recordIds": pack_record_ids(planned.record_ids),
        "largestPostCount": planned.largest_post_count,
    }


def _planned_from_document(document: Mapping[str, Any]) -> PlannedFile:
    return PlannedFile(
        run_date=document["runDate"].date(),
        record_ids=unpack_record_ids(document["recordIds"]),
        largest_post_count=int(document["largestPostCount"]),
    )


def pack_record_ids(record_ids: Sequence[Hashable]) -> Binary | list[Hashable]:
    """ObjectIds as one binary value of 12 bytes each, in order; any other kind of id as a plain list.

    A batch document is read and rewritten whole at every step of the protocol, and the local stand-in
    decodes an array element by element: a day's plan of 7,700 ObjectIds cost about 55 ms per read or
    update and 140 ms to insert, against under 2 ms as one binary value.
    """
    if record_ids and all(type(record_id) is ObjectId for record_id in record_ids):
        return Binary(b"".join(record_id.binary for record_id in record_ids))
    return list(record_ids)


def unpack_record_ids(stored: Any) -> tuple[Hashable, ...]:
    """The ids as ``pack_record_ids`` stored them; a plain list also covers batches planned before packing."""
    if isinstance(stored, bytes):
        if len(stored) % _OBJECT_ID_BYTES:
            raise ValueError(f"Packed record ids of {len(stored)} bytes are not whole ObjectIds")
        return tuple(
            ObjectId(stored[start : start + _OBJECT_ID_BYTES]) for start in range(0, len(stored), _OBJECT_ID_BYTES)
        )
    return tuple(stored)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min)
