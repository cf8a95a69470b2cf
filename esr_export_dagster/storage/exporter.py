"""One deanery's export, step by step: select, open a batch, take numbers, write files, mark records.

The Dagster ops call these steps one per op; each step is idempotent and safe to run twice or
concurrently with another run of the same deanery (the guarantees come from ``ledger``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Sequence

from pymongo import UpdateOne
from pymongo.database import Database

from ..domain.file_plan import ESR_MAX_APPLICANTS_PER_POST, plan_files
from ..domain.past_start import withheld_past_start
from ..domain.records import EXPORTED, INVALID_DATA, TO_EXPORT
from ..domain.streams import APP_STREAM, ExportStream
from ..domain.window import EligibilityWindow
from .collections import ensure_indexes
from .export_dir import ExportDirectory
from .ledger import Batch, BatchFile, BatchNotOpenError, CounterState, ExportLedger
from .mongo import TransientExportError
from .selection import Eligibility, SelectedRecord, select_eligible

# How often a run re-plans after losing the race to open a batch before it hands over to the op's
# RetryPolicy. Each lost race means another run made progress, so this bounds work, not correctness.
_MAX_OPEN_ATTEMPTS = 20
# Documents per round trip when reading a day's records (the driver's default first batch is 101).
_BATCH_SIZE = 5000
# A temporary file older than this belongs to a killed run, not to one still writing.
_STALE_PARTIAL_SECONDS = 3600


@dataclass(frozen=True)
class ExportSettings:
    eligibility: Eligibility = field(default_factory=EligibilityWindow)
    # None: no per-post limit (notifications).
    max_records_per_post: int | None = ESR_MAX_APPLICANTS_PER_POST
    # Records starting on or before this day are kept out of the files (see domain/past_start.py).
    withhold_started_by: dt.date | None = None


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
        self.ledger = ExportLedger(self.database, self.stream.file_type)
        self.records = self.database[self.stream.records_collection]

    def prepare(self) -> None:
        """Indexes and the export directory: checked before any number is taken."""
        ensure_indexes(self.database, self.stream)
        self.export_directory.ensure_writable()
        self.export_directory.remove_stale_partials(_STALE_PARTIAL_SECONDS, time.time())

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
        withheld = self._withheld(selection)
        for _ in range(_MAX_OPEN_ATTEMPTS):
            counter = self.ledger.read_counter(deanery)
            reference = counter.open_batch
            if reference is not None:
                if reference.get("runId") == run_id:
                    return OpenOutcome(
                        deanery, reference["id"], _count_by_date(invalid), tuple(finished), _count_by_date(withheld)
                    )
                # Its plan is frozen, so finishing it here writes the very files its own run would have.
                finished.extend(self.write_batch(deanery, reference["id"]))
                continue
            if selection is None or not _same_counter(selection.read_at, counter):
                selection = self.select(deanery, run_dates)
                if not _same_counter(selection.read_at, counter):
                    continue
            invalid.update(self._mark_invalid(selection))
            withheld = self._withheld(selection)
            plan = plan_files(
                (record.planned() for record in selection.records if record.is_valid and record.record_id not in withheld),
                self.settings.max_records_per_post,
            )
            if not plan:
                return OpenOutcome(deanery, None, _count_by_date(invalid), tuple(finished), _count_by_date(withheld))
            batch = self.ledger.try_open_batch(deanery, selection.read_at, plan, run_id)
            if batch is not None:
                return OpenOutcome(
                    deanery, batch.batch_id, _count_by_date(invalid), tuple(finished), _count_by_date(withheld)
                )
            selection = None
        raise TransientExportError(
            f"{deanery}: other runs kept exporting this deanery while this run planned its files"
        )

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
        """Set ``INVALID_DATA`` on eligible records missing mandatory fields, re-checked as they are now.

        Returns the records marked, each with the run date it was eligible on.
        """
        suspects = {record.record_id: record.run_date for record in selection.records if not record.is_valid}
        if not suspects:
            return {}
        marked: dict[Hashable, dt.date] = {}
        updates = []
        anchor = self.stream.anchor_field
        for document in self.records.find({"_id": {"$in": list(suspects)}, "status": TO_EXPORT}):
            fields = self.stream.invalid_fields(document)
            if not fields:
                continue
            marked[document["_id"]] = suspects[document["_id"]]
            updates.append(
                UpdateOne(
                    # Unchanged since it was checked: an upstream fix in between must win.
                    {"_id": document["_id"], "status": TO_EXPORT, anchor: document.get(anchor)},
                    {"$set": {"status": INVALID_DATA, "generationError": self.stream.generation_error(fields)}},
                )
            )
        if updates:
            self.records.bulk_write(updates, ordered=False)
        return marked

    def _write_file(self, batch: Batch, file: BatchFile) -> FileOutcome:
        self.ledger.record_file_started(batch, file)
        documents = {
            document["_id"]: document
            for document in self.records.find({"_id": {"$in": list(file.record_ids)}}).batch_size(_BATCH_SIZE)
        }
        lines = [
            documents[record_id]
            for record_id in file.record_ids
            if record_id in documents and _belongs_to(documents[record_id], file.name)
        ]
        content, report = self.stream.render_file(lines)
        written = self.export_directory.write_atomically(file.name, content)
        line_ids = [document["_id"] for document in lines]
        if line_ids:
            self.records.update_many(
                {"_id": {"$in": line_ids}, "status": TO_EXPORT},
                # Server time, and $currentDate rather than $set: the local stand-in stores a $set datetime
                # on an existing document as a string.
                {"$set": {"status": EXPORTED, "exportedFileName": file.name}, "$currentDate": {"exportedAt": True}},
            )
        self.ledger.record_file_complete(file, len(line_ids), written.sha256, written.size)
        return FileOutcome(
            deanery=batch.deanery,
            name=file.name,
            sequence=file.sequence,
            run_date=file.run_date,
            line_count=len(line_ids),
            omitted_count=len(file.record_ids) - len(line_ids),
            largest_post_count=file.largest_post_count,
            normalised_fields=dict(report.normalised_fields),
            sha256=written.sha256,
            size=written.size,
        )


def _count_by_date(marked: Mapping[Hashable, dt.date]) -> dict[dt.date, int]:
    return dict(Counter(marked.values()))


def _belongs_to(document: Mapping[str, Any], file_name: str) -> bool:
    """Still waiting for export, or already marked with this very file by an interrupted attempt."""
    status = document.get("status")
    return status == TO_EXPORT or (status == EXPORTED and document.get("exportedFileName") == file_name)


def _same_counter(a: CounterState, b: CounterState) -> bool:
    return a.exists == b.exists and a.version == b.version and a.open_batch is None and b.open_batch is None
