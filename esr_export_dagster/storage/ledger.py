"""The export ledger: sequence counter, open batches and file ledger, without transactions.

Why this shape (see docs/export-protocol.md for the whole argument):

* The numbers come from one ``counter`` document per file type (``APP``, shared by all deaneries, as ESR
  has always received them) or, in ``deanery`` scope, one per deanery and file type (``APP_EOE``). The
  deanery's open batch and its ``version`` live in that same document (under ``deaneries.EOE`` when it is
  shared), so every state change of a deanery's export, the taking of numbers included, is a
  single-document compare-and-set on it: the number and the batch that owns it are recorded in one atomic
  update. No multi-document transaction is needed: they are unsafe on the local stand-in and absent on a
  standalone server. Thirteen deaneries taking numbers from the shared document at once (the 2021
  contention) lose compare-and-sets to each other and try again; none takes a number another holds.
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
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson import Binary, ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..domain.esr_csv import export_file_name
from ..domain.file_plan import PlannedFile
from ..domain.sequence import (
    DEANERY_SCOPE,
    MAX_SEQUENCE,
    SEQUENCE_SCOPE_VARIABLE,
    SHARED_SCOPE,
    as_counter_value,
    checked_scope,
    counter_value_problem,
    numbers_fit,
    sequence_counter_id,
)
from . import protocol
from .collections import COUNTER, EXPORT_BATCH, EXPORT_FILE
from .errors import CorruptExportStateError, ExportFileConflictError, shown
from .mongo import TransientExportError

PLANNED = "PLANNED"
NUMBERED = "NUMBERED"
CLOSED = "CLOSED"
ABANDONED = "ABANDONED"

FILE_WRITING = "WRITING"
# The file's records are marked EXPORTED with its name: from here on its lines are exactly those records.
FILE_MARKED = "MARKED"
FILE_COMPLETE = "COMPLETE"
FILE_STATES = (FILE_WRITING, FILE_MARKED, FILE_COMPLETE)
# A file ledger entry's delivery to ESR's drop (storage/deliverer.py): due while ``undelivered`` is true,
# the receipt under ``delivered`` once it is there.
UNDELIVERED = "undelivered"
DELIVERED = "delivered"

_OBJECT_ID_BYTES = 12
_OPEN_BATCH_STATES = (PLANNED, NUMBERED)
# Each failed compare-and-set means another run moved the counter; after this many the op's RetryPolicy
# takes over, so a counter that keeps changing under a run can never hold it in a loop. Above the 13
# deaneries that share one counter in shared scope: each of them can win once ahead of this run.
_MAX_NUMBERING_ATTEMPTS = 20
_ABSENT = object()


class BatchNotOpenError(RuntimeError):
    """The batch is no longer the deanery's open batch (someone finished and closed it)."""


class MissingBatchPlanError(CorruptExportStateError):
    """A counter's open batch has no ``exportBatch`` document: its plan is gone."""

    def __init__(self, counter_id: str, batch_id: str) -> None:
        super().__init__(
            f"counter {counter_id} has open batch {batch_id}, but exportBatch holds no document {batch_id}: "
            "the plan of which records go in which file is gone."
        )
        self.counter_id = counter_id
        self.batch_id = batch_id


@dataclass(frozen=True)
class CounterState:
    counter_id: str
    exists: bool
    seq: int
    version: int | None
    open_batch: Mapping[str, Any] | None

    @property
    def has_numbered_batch(self) -> bool:
        """An open batch has taken its numbers: the counter runs ahead of the file ledger until it is written."""
        return self.open_batch is not None and self.open_batch.get("state") == NUMBERED


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


@dataclass(frozen=True)
class SequenceReport:
    """A counter's issued numbers against the file ledger: what ``file_numbers_contiguous`` judges."""

    scope: str
    counter: str
    files: int
    first_sequence: int
    last_sequence: int
    counter_sequence: int
    gaps: list[int]
    duplicates: list[int]
    # Numbers taken by a batch still being written: not gaps yet, the next run finishes that batch.
    in_progress: list[int]
    # Why the counter or the ledger could not be read (a value that is not a file number), else None.
    problem: str | None = None

    @classmethod
    def unreadable(cls, scope: str, counter: str, problem: str) -> SequenceReport:
        return cls(scope, counter, 0, 0, 0, 0, [], [], [], problem=problem)

    @property
    def counter_behind(self) -> bool:
        """A file numbered above the counter: the counter was set back, and would issue that number again."""
        return self.files > 0 and self.last_sequence > self.counter_sequence

    @property
    def passed(self) -> bool:
        return self.problem is None and not self.gaps and not self.duplicates and not self.counter_behind

    def shown(self) -> dict[str, Any]:
        """The check's metadata for one deanery (ids and numbers only)."""
        report: dict[str, Any] = {
            "scope": self.scope,
            "counter": self.counter,
            "files": self.files,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "counter_sequence": self.counter_sequence,
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "in_progress": self.in_progress,
        }
        if self.problem is not None:
            report["problem"] = self.problem
        return report


@dataclass
class ExportLedger:
    database: Database
    file_type: str
    scope: str = SHARED_SCOPE
    clock: Any = field(default=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))

    def __post_init__(self) -> None:
        checked_scope(self.scope)

    @property
    def shared(self) -> bool:
        return self.scope == SHARED_SCOPE

    def counter_id(self, deanery: str) -> str:
        return sequence_counter_id(self.file_type, deanery, self.scope)

    def _slot(self, deanery: str) -> str:
        """Where the deanery's ``openBatch`` and ``version`` are in its counter document, as a path prefix."""
        return f"deaneries.{deanery}." if self.shared else ""

    def numbered_deanery(self, deanery: str) -> str | None:
        """The deanery whose files share ``deanery``'s sequence; ``None``: every deanery's (shared scope)."""
        return None if self.shared else deanery

    # -- counter ---------------------------------------------------------------------------------

    def read_counter(self, deanery: str) -> CounterState:
        counter_id = self.counter_id(deanery)
        document = self.database[COUNTER].find_one({"_id": counter_id})
        if document is None:
            return CounterState(counter_id, False, 0, None, None)
        if not self.shared:
            return _validated_counter(counter_id, document, document, "")
        slots = document.get("deaneries", {})
        slot = slots.get(deanery, {}) if isinstance(slots, Mapping) else slots
        if not isinstance(slot, Mapping):
            raise CorruptExportStateError(
                f"counter {counter_id}: deaneries.{deanery} is {shown(slot)}, not a document holding the deanery's "
                "open batch and version. No number was taken and no record was changed."
            )
        return _validated_counter(counter_id, document, slot, self._slot(deanery))

    def scope_conflict(self) -> str | None:
        """Why this instance's counters were kept in the other scope, or ``None`` when they were not.

        Numbering on in another scope would change the numbers ESR receives (and, from shared to deanery, repeat
        them), so a change of scope is refused until the cut-over command has set the new scope's counters.
        """
        counters = self.database[COUNTER]
        if self.shared:
            if counters.find_one({"_id": self.file_type}, {"_id": 1}) is not None:
                return None
            used = sorted(
                str(document["_id"])
                for document in counters.find({"_id": {"$regex": f"^{self.file_type}_"}})
                if document.get("seq") not in (0, None) or document.get("openBatch") is not None
            )
            if not used:
                return None
            return (
                f"{SEQUENCE_SCOPE_VARIABLE} is {SHARED_SCOPE}, but this instance numbers {self.file_type} files per "
                f"deanery (counter(s) {', '.join(used)}) and has no shared counter {self.file_type}. Numbering on in "
                f"one shared sequence would change the numbers ESR receives. Either set {SEQUENCE_SCOPE_VARIABLE}="
                f"{DEANERY_SCOPE}, or agree the next number with ESR and cut over: `esr-export-local cut-over "
                f"--{self.file_type.lower()} <last number ESR received>` (README, 'Cutting over'). No number was taken "
                "and no record was changed."
            )
        shared = counters.find_one({"_id": self.file_type}, {"seq": 1})
        if shared is None:
            return None
        return (
            f"{SEQUENCE_SCOPE_VARIABLE} is {DEANERY_SCOPE}, but this instance numbers {self.file_type} files in one "
            f"shared sequence (counter {self.file_type}, at {shown(shared.get('seq'))}). Numbering per deanery would "
            f"repeat numbers ESR already has. Either set {SEQUENCE_SCOPE_VARIABLE}={SHARED_SCOPE}, or agree each "
            f"deanery's next number with ESR and cut over: `{SEQUENCE_SCOPE_VARIABLE}={DEANERY_SCOPE} esr-export-local "
            f"cut-over --{self.file_type.lower()} <DEANERY>=<last number> ...` (README, 'Cutting over'). No number was "
            "taken and no record was changed."
        )

    def try_open_batch(
        self,
        deanery: str,
        read_at: CounterState,
        plan: Sequence[PlannedFile],
        run_id: str,
        new_counter_seq: int = 0,
    ) -> Batch | None:
        """Open a batch for ``plan`` if nothing changed since ``read_at``; ``None`` if something did.

        A deanery without a counter gets one whose last issued number is ``new_counter_seq``: 0 on a fresh
        instance, the highest number the file ledger proves when the counter was lost.
        """
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
        slot = self._slot(deanery)
        if read_at.exists:
            version_filter: Any = read_at.version if read_at.version is not None else {"$exists": False}
            opened = (
                self.database[COUNTER]
                .update_one(
                    {"_id": read_at.counter_id, f"{slot}openBatch": None, f"{slot}version": version_filter},
                    {"$set": {f"{slot}openBatch": reference}},
                    comment=protocol.OPEN_BATCH,
                )
                .modified_count
                == 1
            )
        else:
            state = {"version": 0, "openBatch": reference}
            try:
                self.database[COUNTER].insert_one(
                    {"_id": read_at.counter_id, "seq": new_counter_seq, "deaneries": {deanery: state}}
                    if self.shared
                    else {"_id": read_at.counter_id, "seq": new_counter_seq, **state},
                    comment=protocol.OPEN_BATCH,
                )
                opened = True
            except DuplicateKeyError:
                opened = False
        if not opened:
            self.database[EXPORT_BATCH].update_one({"_id": batch_id}, {"$set": {"state": ABANDONED}})
            return None
        return self.load_batch(batch_id)

    def number_batch(self, deanery: str, batch_id: str) -> Batch:
        """Take the sequence numbers of an open batch's files: one compare-and-set, idempotent.

        The batch's plan is read and checked before any number is taken, so a missing or damaged plan
        never costs a number.
        """
        for _ in range(_MAX_NUMBERING_ATTEMPTS):
            counter = self.read_counter(deanery)
            reference = counter.open_batch
            if reference is None or reference["id"] != batch_id:
                batch = self.load_batch(batch_id)
                if batch.first_sequence is not None:
                    return batch
                raise BatchNotOpenError(f"Batch {batch_id} of {deanery} is not open")
            batch = self.load_batch(batch_id, counter.counter_id)
            if reference["state"] == NUMBERED:
                first_sequence = as_counter_value(reference["firstSeq"])
                break
            file_count = reference["fileCount"]
            if file_count != len(batch.planned):
                raise CorruptExportStateError(
                    f"counter {counter.counter_id} has open batch {batch_id} of {file_count} file(s), but exportBatch "
                    f"{batch_id} plans {len(batch.planned)}. No number was taken and no record was changed."
                )
            if not numbers_fit(counter.seq, file_count):
                raise CorruptExportStateError(
                    f"counter {counter.counter_id} has seq {counter.seq}: {file_count} more file(s) would pass "
                    f"ESR's 8-digit limit of {MAX_SEQUENCE}. No number was taken; agree the next number with "
                    "ESR and set the counter by hand."
                )
            # The numbers and the batch that owns them, in one update of one document: a run killed right after
            # it leaves the numbers recorded on the deanery's open batch, where its next run finds and finishes them.
            slot = self._slot(deanery)
            taken = self.database[COUNTER].update_one(
                {
                    "_id": counter.counter_id,
                    f"{slot}openBatch.id": batch_id,
                    f"{slot}openBatch.state": PLANNED,
                    "seq": counter.seq,
                },
                {
                    "$set": {
                        "seq": counter.seq + file_count,
                        f"{slot}openBatch.state": NUMBERED,
                        f"{slot}openBatch.firstSeq": counter.seq + 1,
                    }
                },
                comment=protocol.NUMBER_BATCH,
            )
            if taken.modified_count == 1:
                first_sequence = counter.seq + 1
                break
        else:
            raise TransientExportError(
                f"counter {self.counter_id(deanery)} kept changing while batch {batch_id} took its numbers"
            )
        self.database[EXPORT_BATCH].update_one(
            {"_id": batch_id, "state": PLANNED}, {"$set": {"state": NUMBERED, "firstSeq": first_sequence}}
        )
        return self.load_batch(batch_id)

    def release_unplanned_batch(self, deanery: str, batch_id: str) -> bool:
        """Let go of an open batch whose plan document is gone, if it has taken no number yet.

        Nothing was numbered, written or marked for it, so releasing it loses nothing: its records are still
        TO_EXPORT and the next plan takes them. Returns whether this call released it.
        """
        slot = self._slot(deanery)
        released = self.database[COUNTER].update_one(
            {"_id": self.counter_id(deanery), f"{slot}openBatch.id": batch_id, f"{slot}openBatch.state": PLANNED},
            {"$set": {f"{slot}openBatch": None}},
        )
        return released.modified_count == 1

    def close_batch(self, deanery: str, batch_id: str) -> None:
        slot = self._slot(deanery)
        self.database[COUNTER].update_one(
            {"_id": self.counter_id(deanery), f"{slot}openBatch.id": batch_id},
            {"$set": {f"{slot}openBatch": None}, "$inc": {f"{slot}version": 1}},
            comment=protocol.CLOSE_BATCH,
        )
        self.database[EXPORT_BATCH].update_one(
            {"_id": batch_id}, {"$set": {"state": CLOSED}, "$currentDate": {"closedAt": True}}
        )

    # -- batches ---------------------------------------------------------------------------------

    def load_batch(self, batch_id: str, counter_id: str | None = None) -> Batch:
        document = self.database[EXPORT_BATCH].find_one({"_id": batch_id})
        if document is None:
            if counter_id is not None:
                raise MissingBatchPlanError(counter_id, batch_id)
            raise BatchNotOpenError(f"Batch {batch_id} does not exist")
        return _validated_batch(batch_id, document)

    # -- file ledger -----------------------------------------------------------------------------

    def record_file_started(self, batch: Batch, file: BatchFile) -> str:
        """The file's ledger entry, created if need be; returns its state.

        An entry of that name or number that belongs to another batch means the number was issued twice
        (a counter lost or set back): the file is refused before anything is written or marked.
        """
        try:
            self._insert_file_entry(batch, file)
        except DuplicateKeyError:
            pass  # another finisher of this batch inserted it first, or the number names another file: see below
        entry = self.database[EXPORT_FILE].find_one({"_id": file.name})
        if entry is None:
            other = self.database[EXPORT_FILE].find_one(
                {"fileType": self.file_type, "deanery": batch.deanery, "seq": file.sequence}, {"_id": 1}
            )
            raise ExportFileConflictError(
                f"{file.name}: the file ledger already holds {other['_id'] if other else 'another file'} under "
                f"{self.file_type} number {file.sequence} of {batch.deanery}, so the number was issued twice. "
                "Nothing was written and the file's records stay TO_EXPORT."
            )
        if entry.get("batchId") != batch.batch_id or entry.get("seq") != file.sequence:
            raise ExportFileConflictError(
                f"{file.name}: the file ledger already holds this name for batch {shown(entry.get('batchId'))}, "
                f"not for batch {batch.batch_id}, so the number was issued twice. Nothing was written and the "
                "file's records stay TO_EXPORT."
            )
        state = entry.get("state")
        if state not in FILE_STATES:
            raise CorruptExportStateError(
                f"file ledger entry {file.name} has state {shown(state)}, not one of {', '.join(FILE_STATES)}"
            )
        if self.shared:
            # The unique index guards a number within a deanery; across deaneries, this read does. Two batches
            # given one number both find the other here, after their own entry exists, and both stop.
            for other in self.database[EXPORT_FILE].find(
                {"fileType": self.file_type, "seq": file.sequence}, {"batchId": 1}
            ):
                if other["_id"] != file.name and other.get("batchId") != batch.batch_id:
                    raise ExportFileConflictError(
                        f"{file.name}: the file ledger already holds {other['_id']} under shared {self.file_type} "
                        f"number {file.sequence}, so the number was issued twice. Nothing was written and the "
                        "file's records stay TO_EXPORT."
                    )
        return state

    def file_state(self, name: str) -> str | None:
        entry = self.database[EXPORT_FILE].find_one({"_id": name}, {"state": 1})
        return None if entry is None else entry.get("state")

    def record_file_marked(self, file: BatchFile) -> None:
        self.database[EXPORT_FILE].update_one(
            {"_id": file.name, "state": FILE_WRITING},
            {"$set": {"state": FILE_MARKED}},
            comment=protocol.NOTE_FILE_MARKED,
        )

    def _sequence_filter(self, deanery: str) -> dict[str, Any]:
        """The ledger entries numbered from the same counter as ``deanery``'s files."""
        numbered = self.numbered_deanery(deanery)
        return {"fileType": self.file_type} if numbered is None else {"fileType": self.file_type, "deanery": numbered}

    def highest_file(self, deanery: str) -> tuple[int, str] | None:
        """The number and name of the highest-numbered file in the ledger that shares ``deanery``'s counter
        (one indexed read)."""
        for entry in (
            self.database[EXPORT_FILE].find(self._sequence_filter(deanery), {"seq": 1}).sort("seq", -1).limit(1)
        ):
            seq = entry.get("seq")
            if counter_value_problem(seq) is not None:
                raise CorruptExportStateError(
                    f"file ledger entry {entry['_id']} has seq {shown(seq)}, not a file number"
                )
            return as_counter_value(seq), str(entry["_id"])
        return None

    def highest_sequence(self, deanery: str) -> tuple[int, list[str]]:
        """The highest number in the file ledger of ``deanery``'s counter, and the names of its unfinished files."""
        highest = 0
        unfinished = []
        for entry in self.database[EXPORT_FILE].find(self._sequence_filter(deanery), {"seq": 1, "state": 1}):
            seq = entry.get("seq")
            if counter_value_problem(seq) is not None:
                raise CorruptExportStateError(
                    f"file ledger entry {entry['_id']} has seq {shown(seq)}, not a file number"
                )
            highest = max(highest, as_counter_value(seq))
            if entry.get("state") != FILE_COMPLETE:
                unfinished.append(str(entry["_id"]))
        return highest, sorted(unfinished)

    def sequence_report(self, deanery: str) -> SequenceReport:
        """The numbers of ``deanery``'s counter (every deanery's, in shared scope) as the file ledger holds them.

        The counter is read before the ledger, so a number the counter had issued is either in the ledger or
        reserved by a batch open at that moment (its files are entered before it closes): anything else is a
        gap. Numbers issued after that read, by runs going on meanwhile, are not judged. A ledger number above
        the counter read after the ledger means the counter was set back.
        """
        counter_id = self.counter_id(deanery)
        before = self.database[COUNTER].find_one({"_id": counter_id}) or {}
        slots = before.get("deaneries") if self.shared else {deanery: before}
        reserved: set[int] = set()
        for slot in (slots or {}).values() if isinstance(slots, Mapping) else ():
            open_batch = slot.get("openBatch") if isinstance(slot, Mapping) else None
            if isinstance(open_batch, Mapping) and open_batch.get("state") == NUMBERED:
                first = open_batch.get("firstSeq")
                if isinstance(first, int) and isinstance(open_batch.get("fileCount"), int):
                    reserved.update(range(first, first + open_batch["fileCount"]))
        files = list(self.database[EXPORT_FILE].find(self._sequence_filter(deanery), {"seq": 1, "state": 1}))
        after = self.database[COUNTER].find_one({"_id": counter_id}, {"seq": 1}) or {}
        for read in (before, after):
            problem = counter_value_problem(read.get("seq", 0))
            if problem is not None:
                return SequenceReport.unreadable(
                    self.scope, counter_id, f"counter {counter_id}: seq {shown(read.get('seq'))} is {problem}"
                )
        unnumbered = [f["_id"] for f in files if counter_value_problem(f.get("seq")) is not None]
        if unnumbered:
            return SequenceReport.unreadable(
                self.scope, counter_id, f"file ledger: {', '.join(map(str, unnumbered[:5]))} carry no file number"
            )
        numbers = sorted(as_counter_value(f["seq"]) for f in files)
        issued = as_counter_value(before.get("seq", 0))
        judged = [n for n in numbers if n <= issued]
        return SequenceReport(
            scope=self.scope,
            counter=counter_id,
            files=len(numbers),
            first_sequence=numbers[0] if numbers else 0,
            last_sequence=numbers[-1] if numbers else 0,
            counter_sequence=as_counter_value(after.get("seq", 0)),
            gaps=sorted(set(range(judged[0], issued + 1)) - set(numbers) - reserved) if judged else [],
            duplicates=sorted({n for n in numbers if numbers.count(n) > 1}),
            in_progress=sorted(
                {as_counter_value(f["seq"]) for f in files if f.get("state") != FILE_COMPLETE}
                | (reserved - set(numbers))
            ),
        )

    def _insert_file_entry(self, batch: Batch, file: BatchFile) -> None:
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
                    # Due for delivery to ESR's drop once COMPLETE (storage/deliverer.py). Set only here, with
                    # the entry, so that finishing a file again never makes a delivered file due again.
                    UNDELIVERED: True,
                }
            },
            upsert=True,
            comment=protocol.START_FILE,
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
            comment=protocol.COMPLETE_FILE,
        )

    def files_for(self, deanery: str, run_date: dt.date) -> list[Mapping[str, Any]]:
        return list(
            self.database[EXPORT_FILE]
            .find({"fileType": self.file_type, "deanery": deanery, "runDate": _midnight(run_date)})
            .sort("seq", 1)
        )

    # -- queries for the asset checks: each an indexed read of the deanery's own entries ----------

    def file_names_for(self, deanery: str, run_dates: Sequence[dt.date]) -> list[str]:
        """The names of the deanery's files of these run dates, in number order."""
        names: list[str] = []
        for run_date in sorted(set(run_dates)):
            names.extend(
                str(entry["_id"])
                for entry in self.database[EXPORT_FILE]
                .find({"fileType": self.file_type, "deanery": deanery, "runDate": _midnight(run_date)}, {"seq": 1})
                .sort("seq", 1)
            )
        return names

    def numbered_files(self, deanery: str) -> list[NumberedFile]:
        """Every file the ledger holds for the deanery, by number: a file per day, not per record, so this
        stays small over years. A number that is not a file number is refused, naming the entry."""
        files = []
        for entry in self.database[EXPORT_FILE].find(
            {"fileType": self.file_type, "deanery": deanery}, {"seq": 1, "state": 1}
        ):
            seq = entry.get("seq")
            if counter_value_problem(seq) is not None:
                raise CorruptExportStateError(
                    f"file ledger entry {entry['_id']} has seq {shown(seq)}, not a file number"
                )
            files.append(NumberedFile(as_counter_value(seq), str(entry["_id"]), entry.get("state") == FILE_COMPLETE))
        return sorted(files, key=lambda file: (file.sequence, file.name))

    def deliveries_for(self, deanery: str, run_date: dt.date) -> list[FileDelivery]:
        """The deanery's files of one run date and where each stands with ESR's drop, in number order."""
        deliveries = []
        for entry in (
            self.database[EXPORT_FILE]
            .find(
                {"fileType": self.file_type, "deanery": deanery, "runDate": _midnight(run_date)},
                {"seq": 1, UNDELIVERED: 1, DELIVERED: 1},
            )
            .sort("seq", 1)
        ):
            receipt = entry.get(DELIVERED)
            receipt = receipt if isinstance(receipt, Mapping) else {}
            deliveries.append(
                FileDelivery(
                    name=str(entry["_id"]),
                    undelivered=bool(entry.get(UNDELIVERED)),
                    delivered=bool(entry.get(DELIVERED)),
                    destination=receipt.get("destination"),
                    location=receipt.get("location"),
                    sha256=receipt.get("sha256"),
                )
            )
        return deliveries


@dataclass(frozen=True)
class NumberedFile:
    sequence: int
    name: str
    # COMPLETE: written, marked and recorded; any other state is a batch still being finished.
    complete: bool


@dataclass(frozen=True)
class FileDelivery:
    name: str
    # Written and due for ESR's drop, not there yet.
    undelivered: bool
    # In ESR's drop, with the receipt below.
    delivered: bool
    destination: str | None
    location: str | None
    sha256: str | None


def _validated_counter(
    counter_id: str, document: Mapping[str, Any], slot: Mapping[str, Any], slot_path: str
) -> CounterState:
    """The counter as stored, or an error naming it and the value that cannot be trusted.

    ``slot`` holds the deanery's ``openBatch`` and ``version``: the counter document itself, or (shared scope)
    its ``deaneries.<DEANERY>`` sub-document, at ``slot_path``.
    """
    seq = document.get("seq", _ABSENT)
    problem = "seq is missing" if seq is _ABSENT else None
    if problem is None and counter_value_problem(seq) is not None:
        problem = f"seq {shown(seq)} is {counter_value_problem(seq)}"
    if problem is not None:
        raise CorruptExportStateError(
            f"counter {counter_id}: {problem}. It must be the last file number issued, a whole number from 0 to "
            f"{MAX_SEQUENCE}. No number was taken and no record was changed; set it to the last number ESR "
            "received (README, 'When something goes wrong')."
        )
    version = slot.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise CorruptExportStateError(
            f"counter {counter_id} has {slot_path}version {shown(version)}, not a count of closed batches. No number "
            "was taken."
        )
    open_batch = slot.get("openBatch")
    if open_batch is not None:
        _validate_open_batch(counter_id, open_batch, slot_path)
    return CounterState(
        counter_id=counter_id, exists=True, seq=as_counter_value(seq), version=version, open_batch=open_batch
    )


def _validate_open_batch(counter_id: str, reference: Any, slot_path: str = "") -> None:
    def refuse(what: str) -> CorruptExportStateError:
        return CorruptExportStateError(
            f"counter {counter_id} has an open batch that cannot be trusted: {what}. No number was taken and no "
            "record was changed."
        )

    if not isinstance(reference, Mapping):
        raise refuse(f"{slot_path}openBatch is {shown(reference)}, not a document")
    if not isinstance(reference.get("id"), str) or not reference["id"]:
        raise refuse(f"{slot_path}openBatch.id is {shown(reference.get('id'))}")
    state = reference.get("state")
    if state not in _OPEN_BATCH_STATES:
        raise refuse(f"{slot_path}openBatch.state is {shown(state)}, not {' or '.join(_OPEN_BATCH_STATES)}")
    file_count = reference.get("fileCount")
    if isinstance(file_count, bool) or not isinstance(file_count, int) or file_count < 1:
        raise refuse(f"{slot_path}openBatch.fileCount is {shown(file_count)}")
    if state == NUMBERED:
        first = reference.get("firstSeq")
        if counter_value_problem(first) is not None or first < 1 or not numbers_fit(first - 1, file_count):
            raise refuse(f"{slot_path}openBatch.firstSeq is {shown(first)}")


def _validated_batch(batch_id: str, document: Mapping[str, Any]) -> Batch:
    def refuse(what: str) -> CorruptExportStateError:
        return CorruptExportStateError(f"exportBatch {batch_id} cannot be trusted: {what}. No number was taken for it.")

    files = document.get("files")
    if not isinstance(files, list) or not files:
        raise refuse(f"files is {shown(files)}, not a list of planned files")
    planned = []
    for index, file in enumerate(files):
        try:
            planned.append(_planned_from_document(file))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise refuse(f"files[{index}] is not a planned file (runDate, recordIds, largestPostCount)") from None
    first_sequence = document.get("firstSeq")
    if first_sequence is not None and (counter_value_problem(first_sequence) is not None or first_sequence < 1):
        raise refuse(f"firstSeq is {shown(first_sequence)}")
    for name in ("fileType", "deanery", "runId", "state"):
        if not isinstance(document.get(name), str):
            raise refuse(f"{name} is {shown(document.get(name))}")
    return Batch(
        batch_id=batch_id,
        file_type=document["fileType"],
        deanery=document["deanery"],
        run_id=document["runId"],
        state=document["state"],
        first_sequence=first_sequence,
        planned=tuple(planned),
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


# -- ESR's confirmations of the ledger's files ------------------------------------------------------------

ESR_CONFIRMATIONS = "esrConfirmations"


def record_confirmation(
    database: Database, export_file: str, confirmation_key: str, summary: Mapping[str, Any]
) -> None:
    """Record on an export file's entry that ESR answered it, keyed by confirmation: reading the same
    confirmation again sets the same values. A keyed ``$set``, not ``$push``: the local stand-in stores a
    pushed sub-document as text."""
    database[EXPORT_FILE].update_one(
        {"_id": export_file}, {"$set": {f"{ESR_CONFIRMATIONS}.{confirmation_key}": summary}}
    )


def unconfirmed_delivered_files(database: Database, delivered_before: dt.datetime) -> list[Mapping[str, Any]]:
    """Files in ESR's drop since before ``delivered_before`` (naive UTC) that no confirmation answers yet."""
    entries = database[EXPORT_FILE].find(
        {"delivered": {"$exists": True}, ESR_CONFIRMATIONS: {"$exists": False}},
        {"deanery": 1, "fileType": 1, "runDate": 1, "deliveredAt": 1},
    )
    return sorted(
        (e for e in entries if isinstance(e.get("deliveredAt"), dt.datetime) and e["deliveredAt"] < delivered_before),
        key=lambda e: str(e["_id"]),
    )
