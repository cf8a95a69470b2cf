"""Finding the records a deanery's export (APP or DNC) should take for a span of run dates.

Records are read whole (on the local stand-in a projection costs more than it saves), their mandatory
values are looked at to decide validity, and only ids and scheduling fields leave this module: the
selection carries no personal data.

Upstream data is not trusted to be well typed. The deanery's whole TO_EXPORT queue is read and its dates
compared here, not in the query: a date range in a query silently skips a start date stored as text or
missing (on a real MongoDB) or fails on it (on the local stand-in), and such a record would then wait
forever, never exported and never reported. It is taken instead, on the first run date, as a record whose
anchor field is invalid, so the export sets it INVALID_DATA with the field named.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pymongo.database import Database

from ..domain.deaneries import require_deanery
from ..domain.file_plan import PlannedRecord
from ..domain.records import EXPORTED, TO_EXPORT, field_value
from ..domain.streams import ExportStream
from ..domain.text_values import mandatory_text_as_written
from ..domain.window import within_anchor_range
from . import protocol

# Documents per round trip when reading a deanery's records (the driver's default first batch is 101).
RECORDS_PER_ROUND_TRIP = 5000


class Eligibility(Protocol):
    """``EligibilityWindow`` (applicants, by start date) or ``CreatedBeforeExportTime`` (notifications)."""

    def anchor_range(
        self, first_run_date: dt.date, last_run_date: dt.date
    ) -> tuple[dt.datetime | None, dt.datetime]: ...

    def first_run_date(self, anchor: dt.datetime, run_dates: Sequence[dt.date]) -> dt.date | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SelectedRecord:
    record_id: Hashable
    # placementId or notificationId; the start or creation date (see ``PlannedRecord``).
    reference: int | None
    post_number: str | None
    # None when the stored start (or creation) date is missing or not a date.
    anchor_date: dt.date | None
    run_date: dt.date
    invalid_fields: tuple[str, ...]
    # Why a record whose own fields are valid still cannot go: its reference is held by another record.
    # Ids and the reference only, so it is safe to store as the record's generationError and to show.
    conflict: str = ""

    @property
    def is_valid(self) -> bool:
        return not self.invalid_fields and not self.conflict

    def planned(self) -> PlannedRecord:
        if not self.is_valid or self.reference is None or self.post_number is None or self.anchor_date is None:
            raise ValueError(f"Record {self.record_id} is not valid for export")
        return PlannedRecord(
            record_id=self.record_id,
            reference=self.reference,
            post_number=self.post_number,
            anchor_date=self.anchor_date,
            run_date=self.run_date,
        )


def select_eligible(
    database: Database,
    deanery: str,
    run_dates: Sequence[dt.date],
    stream: ExportStream,
    eligibility: Eligibility,
) -> list[SelectedRecord]:
    """``TO_EXPORT`` records of ``deanery`` eligible on at least one of ``run_dates``.

    Each record is assigned to the first of those dates on which it is eligible, which is what running
    the dates one by one, in order, would have exported it on.
    """
    require_deanery(deanery)
    if not run_dates:
        return []
    dates = sorted(set(run_dates))
    anchor_from, anchor_to = eligibility.anchor_range(dates[0], dates[-1])
    records = database[stream.records_collection]
    selected = []
    for document in records.find({"deanery": deanery, "status": TO_EXPORT}, comment=protocol.SELECT_RECORDS).batch_size(
        RECORDS_PER_ROUND_TRIP
    ):
        anchor = document.get(stream.anchor_field)
        if isinstance(anchor, dt.datetime):
            if not within_anchor_range(anchor, anchor_from, anchor_to):
                continue
            run_date = eligibility.first_run_date(anchor, dates)
            if run_date is None:
                continue
            anchor_date: dt.date | None = anchor.date()
        else:
            # No date can ever select it: the first run date reports it (see the module's docstring).
            run_date, anchor_date = dates[0], None
        selected.append(
            SelectedRecord(
                record_id=document["_id"],
                reference=_int_or_none(field_value(document, stream.reference_field)),
                # As written to the file: the 40-per-post limit counts posts as ESR will see them.
                post_number=mandatory_text_as_written(field_value(document, "deaneryPostNumber")),
                anchor_date=anchor_date,
                run_date=run_date,
                invalid_fields=tuple(stream.invalid_fields(document)),
            )
        )
    selected = _with_reference_conflicts(records, stream, selected)
    selected.sort(
        key=lambda r: (
            r.run_date,
            r.post_number or "",
            r.anchor_date or dt.date.min,
            r.reference or 0,
            str(r.record_id),
        )
    )
    return selected


def _with_reference_conflicts(
    records: Any, stream: ExportStream, selected: list[SelectedRecord]
) -> list[SelectedRecord]:
    """Marks the records whose reference another waiting or exported record also holds.

    ESR takes the reference (placement or notification id) as the line's identity: sending a second record
    of an exported placement, or one of two waiting records of one placement, would give ESR two applicants
    for one vacancy. Neither is guessed at: each such record is set aside, naming the other record(s).
    """
    references = sorted({record.reference for record in selected if record.reference is not None})
    if not references:
        return selected
    holders: dict[int, list[tuple[Hashable, str]]] = defaultdict(list)
    for document in records.find(
        {stream.reference_field: {"$in": references}, "status": {"$in": [TO_EXPORT, EXPORTED]}},
        {stream.reference_field: 1, "status": 1},
        comment=protocol.SELECT_RECORDS,
    ):
        reference = _int_or_none(field_value(document, stream.reference_field))
        if reference is not None:
            holders[reference].append((document["_id"], str(document.get("status"))))
    return [
        _with_conflict(record, stream, holders[record.reference]) if record.reference is not None else record
        for record in selected
    ]


def _with_conflict(
    record: SelectedRecord, stream: ExportStream, holders: Iterable[tuple[Hashable, str]]
) -> SelectedRecord:
    others = sorted((str(record_id), status) for record_id, status in holders if record_id != record.record_id)
    if not others:
        return record
    shown = ", ".join(f"{record_id} ({status})" for record_id, status in others[:3])
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    conflict = (
        f"Duplicate {stream.reference_field} {record.reference}: also held by record {shown}{more}. "
        "Not exported: ESR would receive two lines for one reference."
    )
    return replace(record, conflict=conflict)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
