"""One deanery's export, step by step: select, open a batch, take numbers, write files, mark records.

The Dagster ops call these steps one per op; each step is idempotent and safe to run twice or
concurrently with another run of the same deanery (the guarantees come from ``ledger``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.database import Database

from ..domain.esr_csv import parse_export_file_name
from ..domain.file_plan import ESR_MAX_APPLICANTS_PER_POST, plan_files
from ..domain.past_start import withheld_past_start
from ..domain.records import EXPORTED, INVALID_DATA, TO_EXPORT
from ..domain.sequence import SHARED_SCOPE
from ..domain.streams import APP_STREAM, ExportStream
from ..domain.window import EligibilityWindow, within_anchor_range
from . import protocol
from .collections import ensure_indexes
from .errors import CorruptExportStateError, ExportFileConflictError
from .export_dir import ExportDirectory
from .ledger import (
    FILE_WRITING,
    PLANNED,
    Batch,
    BatchFile,
    BatchNotOpenError,
    CounterState,
    ExportLedger,
    MissingBatchPlanError,
)
from .mongo import TransientExportError
from .selection import RECORDS_PER_ROUND_TRIP, Eligibility, SelectedRecord, select_eligible

# How often a run re-plans after losing the race to open a batch before it hands over to the op's
# RetryPolicy. Each lost race means another run made progress, so this bounds work, not correctness.
_MAX_OPEN_ATTEMPTS = 20
# The name of the file a waiting record is about to be marked for (see Exporter._mark_for_file).
CLAIMED_BY = "exportClaimedBy"
_SET_COUNTER = (
    "Set the counter to the last number ESR received (README, 'When something goes wrong'). No number was taken "
    "and no record was changed."
)
# A temporary file older than this belongs to a killed run, not to one still writing.
_STALE_PARTIAL_SECONDS = 3600


@dataclass(frozen=True)
class ExportSettings:
    eligibility: Eligibility = field(default_factory=EligibilityWindow)
    # None: no per-post limit (notifications).
    max_records_per_post: int | None = ESR_MAX_APPLICANTS_PER_POST
    # Records starting on or before this day are kept out of the files (see domain/past_start.py).
    withhold_started_by: dt.date | None = None
    # One sequence per file type across all deaneries, or one per deanery (domain/sequence.py).
    sequence_scope: str = SHARED_SCOPE


@dataclass(frozen=True)
class Selection:
    """The records eligible for a deanery's run dates, and the counter state they were read at."""

    deanery: str
    read_at: CounterState
    records: tuple[SelectedRecord, ...]


@dataclass(frozen=True)
class FileOutcome:
    deanery: str
    name: str
    sequence: int
    run_date: dt.date
    line_count: int
    omitted_count: int
    largest_post_count: int
    normalised_fields: Mapping[str, int]
    sha256: str
    size: int


@dataclass(frozen=True)
class OpenOutcome:
    deanery: str
    batch_id: str | None
    # How many eligible records were set to INVALID_DATA, by the run date they were eligible on.
    invalid_by_run_date: Mapping[dt.date, int]
    finished_files: tuple[FileOutcome, ...]
    # How many valid records were kept out of the files because their trainee has started, by run date.
    withheld_by_run_date: Mapping[dt.date, int] = field(default_factory=dict)
    # References held by more than one record: those records were set to INVALID_DATA, not exported.
    duplicate_references: tuple[int, ...] = ()
    # What this run repaired on its way, in words safe to log (ids, counters, numbers).
    notes: tuple[str, ...] = ()

    @property
    def invalid_count(self) -> int:
        return sum(self.invalid_by_run_date.values())

    @property
    def withheld_count(self) -> int:
        return sum(self.withheld_by_run_date.values())


@dataclass
class Exporter:
    database: Database
    directory: ExportDirectory | None
    settings: ExportSettings = field(default_factory=ExportSettings)
    stream: ExportStream = APP_STREAM

    def __post_init__(self) -> None:
        self.ledger = ExportLedger(self.database, self.stream.file_type, self.settings.sequence_scope)
        self.records = self.database[self.stream.records_collection]

    def prepare(self) -> list[str]:
        """Indexes and the export directory, checked before any number is taken.

        Returns a note for each index of the records' collection that could not be built: upstream's data
        can break such a build, and it must not stop the export (see ``ensure_indexes``).
        """
        notes = ensure_indexes(self.database, self.stream)
        self.export_directory.ensure_writable()
        self.export_directory.remove_stale_partials(_STALE_PARTIAL_SECONDS, time.time())
        return notes

    @property
    def export_directory(self) -> ExportDirectory:
        if self.directory is None:
            raise ValueError("This exporter was built without an export directory: it can only select")
        return self.directory

    # -- step 1: selection ----------------------------------------------------------------------

    def select(self, deanery: str, run_dates: Sequence[dt.date]) -> Selection:
        # The counter is read first: the selection is only trusted while the counter's version is unchanged.
        read_at = self.ledger.read_counter(deanery)
        records = select_eligible(self.database, deanery, run_dates, self.stream, self.settings.eligibility)
        return Selection(deanery, read_at, tuple(records))

    # -- step 2: open a batch -------------------------------------------------------------------

    def open_batch(
        self,
        deanery: str,
        run_dates: Sequence[dt.date],
        run_id: str,
        selection: Selection | None = None,
    ) -> OpenOutcome:
        """Freeze this run's files for ``deanery`` as the deanery's open batch.

        A batch left open by another run (killed, or still running) is finished first. ``selection`` is
        used only if nothing was exported since it was read; otherwise the records are selected afresh.
        """
        finished: list[FileOutcome] = []
        invalid: dict[Hashable, dt.date] = {}
        duplicates: set[int] = set()
        notes: list[str] = []
        withheld = self._withheld(selection)

        def outcome(batch_id: str | None) -> OpenOutcome:
            return OpenOutcome(
                deanery,
                batch_id,
                _count_by_date(invalid),
                tuple(finished),
                _count_by_date(withheld),
                tuple(sorted(duplicates)),
                tuple(notes),
            )

        for _ in range(_MAX_OPEN_ATTEMPTS):
            counter = self.ledger.read_counter(deanery)
            reference = counter.open_batch
            if reference is not None:
                if reference.get("runId") == run_id:
                    return outcome(reference["id"])
                # Its plan is frozen, so finishing it here writes the very files its own run would have.
                finished.extend(self._finish_other_batch(deanery, reference, notes))
                continue
            if selection is None or not _same_counter(selection.read_at, counter):
                selection = self.select(deanery, run_dates)
                if not _same_counter(selection.read_at, counter):
                    continue
            marked = self._mark_invalid(selection)
            invalid.update(marked)
            duplicates.update(
                record.reference
                for record in selection.records
                if record.conflict and record.record_id in marked and record.reference is not None
            )
            withheld = self._withheld(selection)
            plan = plan_files(
                (
                    record.planned()
                    for record in selection.records
                    if record.is_valid and record.record_id not in withheld
                ),
                self.settings.max_records_per_post,
            )
            if not plan:
                return outcome(None)
            last_issued = self._last_issued(deanery, counter, notes)
            batch = self.ledger.try_open_batch(deanery, selection.read_at, plan, run_id, last_issued)
            if batch is not None:
                return outcome(batch.batch_id)
            selection = None
        raise TransientExportError(
            f"{deanery}: other runs kept exporting this deanery while this run planned its files"
        )

    def _finish_other_batch(self, deanery: str, reference: Mapping[str, Any], notes: list[str]) -> list[FileOutcome]:
        try:
            return self.write_batch(deanery, reference["id"])
        except MissingBatchPlanError as error:
            if reference["state"] == PLANNED and self.ledger.release_unplanned_batch(deanery, reference["id"]):
                notes.append(f"{error} It had taken no number, so it was released and its records planned afresh.")
                return []
            if reference["state"] == PLANNED:
                return []  # released or finished by another run since it was read: look again
            last = reference["firstSeq"] + reference["fileCount"] - 1
            raise CorruptExportStateError(
                f"{error} It holds {self.stream.file_type} numbers {reference['firstSeq']}..{last}, whose files "
                f"cannot be rebuilt without it: restore exportBatch {reference['id']} from a backup. No other number "
                "was taken and no record was changed."
            ) from None

    def _last_issued(self, deanery: str, counter: CounterState, notes: list[str]) -> int:
        """The last number issued from the deanery's counter, checked against the files already written.

        A counter can be lost (a dropped collection) or set back (a restore from an old backup). Numbering on
        from it would reuse numbers ESR already has, so the export directory, and for a missing counter the
        file ledger, are asked what was issued: the files of the deanery (deanery scope) or of every deanery
        (shared scope). A missing counter resumes after the ledger's highest number only when the ledger
        accounts for every file in the directory; anything else is refused. So is a counter kept in the other
        scope: switching scope silently would change the numbers ESR receives.
        """
        conflict = self.ledger.scope_conflict()
        if conflict is not None:
            raise CorruptExportStateError(conflict)
        counter_id = self.ledger.counter_id(deanery)
        numbered = self.ledger.numbered_deanery(deanery)
        on_disk = self.export_directory.highest_sequence(numbered, self.stream.file_type)
        disk_highest = parse_export_file_name(on_disk).sequence if on_disk else 0
        if counter.exists:
            in_ledger = self.ledger.highest_file(deanery)
            # The files first, the counter after: a file exists only once the counter has passed its number, so
            # a counter read after the files is behind them only if it was set back, never because another run
            # (of another deanery, in shared scope) numbered and wrote files since this run read it.
            current = self.ledger.read_counter(deanery)
            if disk_highest > current.seq:
                raise CorruptExportStateError(
                    f"counter {counter_id} has seq {current.seq}, but ESR_EXPORT_DIR holds {on_disk} (number "
                    f"{disk_highest}): numbering on would repeat numbers ESR already has. {_SET_COUNTER}"
                )
            if in_ledger is not None and in_ledger[0] > current.seq:
                raise CorruptExportStateError(
                    f"counter {counter_id} has seq {current.seq}, but the file ledger holds {in_ledger[1]} (number "
                    f"{in_ledger[0]}): numbering on would repeat numbers ESR already has. {_SET_COUNTER}"
                )
            return counter.seq
        highest, unfinished = self.ledger.highest_sequence(deanery)
        if self.ledger.read_counter(deanery).exists:
            # Another run created it since this run read it: this run's insert loses and the run plans again.
            return highest
        if unfinished:
            raise CorruptExportStateError(
                f"counter {counter_id} is missing and the file ledger holds unfinished file(s) "
                f"{', '.join(unfinished)}: the batch that was writing them is lost with the counter. Restore the "
                "counter from a backup. No number was taken and no record was changed."
            )
        if disk_highest > highest:
            known = f"knows only up to {highest}" if highest else "does not know"
            raise CorruptExportStateError(
                f"counter {counter_id} is missing, but ESR_EXPORT_DIR holds {on_disk} (number {disk_highest}), which "
                f"the file ledger {known}: starting again would repeat numbers ESR already has. {_SET_COUNTER}"
            )
        if highest:
            notes.append(
                f"counter {counter_id} was missing: numbering resumes after {highest}, the highest number in the "
                "file ledger, which accounts for every file in ESR_EXPORT_DIR."
            )
        return highest

    # -- step 3: sequence numbers ---------------------------------------------------------------

    def allocate_sequence(self, deanery: str, batch_id: str) -> Batch:
        self.export_directory.ensure_writable()
        return self.ledger.number_batch(deanery, batch_id)

    # -- step 4: files and records --------------------------------------------------------------

    def write_batch(self, deanery: str, batch_id: str) -> list[FileOutcome]:
        """Write every file of a numbered batch, mark its records, and close the batch."""
        try:
            batch = self.ledger.number_batch(deanery, batch_id)
        except BatchNotOpenError:
            return []
        outcomes = [self._write_file(batch, file) for file in batch.files]
        self.ledger.close_batch(deanery, batch_id)
        return outcomes

    # -- internals ------------------------------------------------------------------------------

    def _withheld(self, selection: Selection | None) -> dict[Hashable, dt.date]:
        if selection is None or not self.stream.anchor_is_start_date:
            return {}
        return withheld_past_start(selection.records, self.settings.withhold_started_by)

    def _mark_invalid(self, selection: Selection) -> dict[Hashable, dt.date]:
        """Set ``INVALID_DATA`` on eligible records that cannot go, re-checked as they are now.

        A record cannot go when a mandatory field is missing or malformed (its start date included), or when
        another record holds its reference. Returns the records marked, each with the run date it was
        eligible on.
        """
        suspects = {record.record_id: record for record in selection.records if not record.is_valid}
        if not suspects:
            return {}
        marked: dict[Hashable, dt.date] = {}
        updates = []
        anchor = self.stream.anchor_field
        for document in self.records.find({"_id": {"$in": list(suspects)}, "status": TO_EXPORT}):
            suspect = suspects[document["_id"]]
            fields = self.stream.invalid_fields(document)
            if fields:
                error = self.stream.generation_error(fields)
            elif suspect.conflict:
                error = suspect.conflict
            else:
                continue
            marked[document["_id"]] = suspect.run_date
            unchanged: dict[str, Any] = {"_id": document["_id"], "status": TO_EXPORT}
            if not isinstance(document.get(anchor), (Mapping, list)):
                # Unchanged since it was checked: an upstream fix in between must win. A sub-document is not
                # compared (the local stand-in cannot), so a fix racing this update is overtaken, and reported.
                unchanged[anchor] = document.get(anchor)
            updates.append(UpdateOne(unchanged, {"$set": {"status": INVALID_DATA, "generationError": error}}))
        if updates:
            self.records.bulk_write(updates, ordered=False)
        return marked

    def _write_file(self, batch: Batch, file: BatchFile) -> FileOutcome:
        """Stage the file, mark its records, publish exactly the records marked, record the file complete.

        The bytes are staged (written under a temporary name) before any record is marked, so that a full or
        failing disk changes no record. Marking comes before publishing so that what the file holds is what
        is marked, whatever happens around it:
        records are marked only if they are still waiting, still of the batch's deanery and still eligible
        on the file's date; a record marked can no longer be changed upstream (only TO_EXPORT records are);
        and the bytes are rendered from the marked records, so a retry after a crash renders the same bytes.
        See docs/export-protocol.md.
        """
        state = self.ledger.record_file_started(batch, file)
        if state == FILE_WRITING:
            state = self._refuse_taken_name(batch, file)
        staged = None
        rendered = None
        if state == FILE_WRITING:
            # The bytes the file will almost surely hold, on disk before any record changes: a full or failing
            # disk stops the file here, with every one of its records still waiting.
            qualifying = self._still_qualifying(batch, file)
            staged_render = self.stream.render_file(_in_plan_order(file, qualifying))
            staged = self.export_directory.stage(file.name, staged_render[0])
            try:
                self._mark_for_file(batch, file)
                marked = self._marked_for(file)
                if _same_records(qualifying, marked):
                    # Marked exactly as staged: valid (staged records are), and the same bytes.
                    documents, rendered = marked, staged_render
                else:
                    documents = self._set_aside_invalid(file, marked)
                self.ledger.record_file_marked(file)
            except BaseException:
                self.export_directory.discard(staged)
                raise
        else:
            documents = self._marked_for(file)
        lines = _in_plan_order(file, documents)
        content, report = rendered or self.stream.render_file(lines)
        if staged is None or staged.content != content:
            # A record changed between the two reads (or an earlier attempt marked them): the marks decide.
            if staged is not None:
                self.export_directory.discard(staged)
            staged = self.export_directory.stage(file.name, content)
        try:
            written = self.export_directory.publish(staged)
        except ExportFileConflictError as error:
            raise ExportFileConflictError(
                f"{error} Its {len(lines)} record(s) are marked EXPORTED for it and wait for it: once the other "
                "file is moved out of ESR_EXPORT_DIR, the next run of the deanery writes it under this name."
            ) from None
        self.ledger.record_file_complete(file, len(lines), written.sha256, written.size)
        return FileOutcome(
            deanery=batch.deanery,
            name=file.name,
            sequence=file.sequence,
            run_date=file.run_date,
            line_count=len(lines),
            omitted_count=len(file.record_ids) - len(lines),
            largest_post_count=file.largest_post_count,
            normalised_fields=dict(report.normalised_fields),
            sha256=written.sha256,
            size=written.size,
        )

    def _refuse_taken_name(self, batch: Batch, file: BatchFile) -> str:
        """Before a record is marked: the file's name must be free. Returns the ledger state to go on from.

        A name is taken legitimately only by another finisher of this very batch, which marks its records
        in the ledger before it writes: the ledger then says so.
        """
        if not self.export_directory.is_taken(file.name):
            return FILE_WRITING
        state = self.ledger.file_state(file.name)
        if state != FILE_WRITING:
            return state
        raise ExportFileConflictError(
            f"{file.name} already exists in ESR_EXPORT_DIR, but this export has not written it: nothing is ever "
            f"overwritten. Its {len(file.record_ids)} planned record(s) stay TO_EXPORT and number {file.sequence} "
            "stays reserved for it. Find out what the other file is (README, 'When something goes wrong') and move "
            "it out of ESR_EXPORT_DIR; the next run of the deanery then writes this file."
        )

    def _qualifying_filter(self, batch: Batch, file: BatchFile) -> dict[str, Any]:
        """A planned record still goes in the file: still waiting, of the batch's deanery, eligible on its date."""
        anchor_from, anchor_to = self.settings.eligibility.anchor_range(file.run_date, file.run_date)
        anchor_range: dict[str, dt.datetime] = {"$lt": anchor_to}
        if anchor_from is not None:
            anchor_range["$gte"] = anchor_from
        return {"status": TO_EXPORT, "deanery": batch.deanery, self.stream.anchor_field: anchor_range}

    def _still_qualifying(self, batch: Batch, file: BatchFile) -> dict[Hashable, Mapping[str, Any]]:
        """The planned records that would be marked now, valid ones only: what the file is staged from.

        MongoDB is asked for the planned ids still waiting in the deanery; the anchor's range is judged here,
        as the mark's filter judges it. The local stand-in serves an id list beside a date range only by
        decoding every stored record in Python (about 3 s per file at 3,900 stored records, growing with the
        collection), and this read only predicts: the mark decides what the file holds (see _write_file).
        """
        anchor = self.stream.anchor_field
        anchor_from, anchor_to = self.settings.eligibility.anchor_range(file.run_date, file.run_date)
        return {
            document["_id"]: document
            for document in self.records.find(
                {"_id": {"$in": list(file.record_ids)}, "status": TO_EXPORT, "deanery": batch.deanery}
            ).batch_size(RECORDS_PER_ROUND_TRIP)
            if within_anchor_range(document.get(anchor), anchor_from, anchor_to)
            and not self.stream.invalid_fields(document)
        }

    def _mark_for_file(self, batch: Batch, file: BatchFile) -> None:
        """Mark the planned records that still qualify, judged by MongoDB at the moment of marking.

        The file's waiting records are first claimed with its name, so that the mark itself names no id: it
        asks for the records claimed by the file that are still waiting, of the deanery and eligible on the
        file's date, all judged by MongoDB in the one update. (The local stand-in serves an id list beside a
        date range only by decoding every stored record in Python: about 0.3 ms per stored record for every
        file, hours for a month's backfill; the claim and this mark are served in SQL.) When fewer records
        are marked than claimed, every claim of the file still left is removed. One can remain (after a
        crash, or on a record that left the queue while an earlier attempt held its claim) and is harmless:
        only the file of that name reads it, and its retry claims the records still waiting again.
        """
        still_qualifies = self._qualifying_filter(batch, file)
        # Server time, and $currentDate rather than $set: the local stand-in stores a $set datetime on an
        # existing document as a string.
        mark = {
            "$set": {"status": EXPORTED, "exportedFileName": file.name},
            "$unset": {CLAIMED_BY: ""},
            "$currentDate": {"exportedAt": True},
        }
        object_ids = [record_id for record_id in file.record_ids if type(record_id) is ObjectId]
        if object_ids:
            claimed = self.records.update_many(
                {"_id": {"$in": object_ids}, "status": TO_EXPORT, "deanery": batch.deanery},
                {"$set": {CLAIMED_BY: file.name}},
                comment=protocol.CLAIM_RECORDS,
            ).matched_count
            marked = self.records.update_many(
                {CLAIMED_BY: file.name, **still_qualifies}, mark, comment=protocol.MARK_RECORDS
            ).matched_count
            if marked < claimed:
                self.records.update_many(
                    {CLAIMED_BY: file.name},
                    {"$unset": {CLAIMED_BY: ""}},
                    comment=protocol.MARK_RECORDS,
                )
        # Ids of other kinds (legacy records) one by one: in an `$in` beside ObjectIds, the local stand-in
        # counts them as matched but leaves them unchanged.
        for record_id in file.record_ids:
            if type(record_id) is not ObjectId:
                self.records.update_one({"_id": record_id, **still_qualifies}, mark, comment=protocol.MARK_RECORDS)

    def _marked_for(self, file: BatchFile) -> dict[Hashable, Mapping[str, Any]]:
        return {
            document["_id"]: document
            for document in self.records.find(
                {"_id": {"$in": list(file.record_ids)}, "status": EXPORTED, "exportedFileName": file.name}
            ).batch_size(RECORDS_PER_ROUND_TRIP)
        }

    def _set_aside_invalid(
        self, file: BatchFile, documents: dict[Hashable, Mapping[str, Any]]
    ) -> dict[Hashable, Mapping[str, Any]]:
        """A record made invalid upstream between its check and its marking goes INVALID_DATA, not in the file.

        Only while no byte of the file exists: the ledger still says WRITING.
        """
        updates = []
        set_aside = set()
        for record_id, document in documents.items():
            fields = self.stream.invalid_fields(document)
            if fields:
                set_aside.add(record_id)
                updates.append(
                    UpdateOne(
                        {"_id": record_id, "status": EXPORTED, "exportedFileName": file.name},
                        {
                            "$set": {"status": INVALID_DATA, "generationError": self.stream.generation_error(fields)},
                            "$unset": {"exportedFileName": "", "exportedAt": ""},
                        },
                    )
                )
        if not updates:
            return documents
        self.records.bulk_write(updates, ordered=False)
        return {record_id: document for record_id, document in documents.items() if record_id not in set_aside}


# What marking changes on a record; nothing a line is rendered from or a record is validated on.
_MARK_FIELDS = frozenset({"status", "exportedFileName", "exportedAt", CLAIMED_BY})


def _same_records(staged: Mapping[Hashable, Mapping[str, Any]], marked: Mapping[Hashable, Mapping[str, Any]]) -> bool:
    """The records marked are the ones staged, unchanged but for the mark itself."""
    if staged.keys() != marked.keys():
        return False
    return all(
        {k: v for k, v in marked[record_id].items() if k not in _MARK_FIELDS}
        == {k: v for k, v in document.items() if k not in _MARK_FIELDS}
        for record_id, document in staged.items()
    )


def _in_plan_order(file: BatchFile, documents: Mapping[Hashable, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [documents[record_id] for record_id in file.record_ids if record_id in documents]


def _count_by_date(marked: Mapping[Hashable, dt.date]) -> dict[dt.date, int]:
    return dict(Counter(marked.values()))


def _same_counter(a: CounterState, b: CounterState) -> bool:
    return a.exists == b.exists and a.version == b.version and a.open_batch is None and b.open_batch is None
