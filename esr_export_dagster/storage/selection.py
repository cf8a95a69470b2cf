"""Finding the records a deanery's export (APP or DNC) should take for a span of run dates.

Records are read whole (on the local stand-in a projection costs more than it saves), their mandatory
values are looked at to decide validity, and only ids and scheduling fields leave this module: the
selection carries no personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Hashable, Protocol, Sequence

from pymongo.database import Database

from ..domain.deaneries import require_deanery
from ..domain.file_plan import PlannedRecord
from ..domain.records import TO_EXPORT, field_value
from ..domain.streams import ExportStream


class Eligibility(Protocol):
    """``EligibilityWindow`` (applicants, by start date) or ``CreatedBeforeExportTime`` (notifications)."""

    def anchor_range(self, first_run_date: dt.date, last_run_date: dt.date) -> tuple[dt.datetime | None, dt.datetime]: ...

    def first_run_date(self, anchor: dt.datetime, run_dates: Sequence[dt.date]) -> dt.date | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SelectedRecord:
    record_id: Hashable
    # placementId or notificationId; the start or creation date (see ``PlannedRecord``).
    reference: int | None
    post_number: str | None
    anchor_date: dt.date
    run_date: dt.date
    invalid_fields: tuple[str, ...]

    @property
    def is_valid(self) -> bool:
        return not self.invalid_fields

    def planned(self) -> PlannedRecord:
        if not self.is_valid or self.reference is None or self.post_number is None:
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
    anchor_range: dict[str, dt.datetime] = {"$lt": anchor_to}
    if anchor_from is not None:
        anchor_range["$gte"] = anchor_from
    cursor = database[stream.records_collection].find(
        {"deanery": deanery, "status": TO_EXPORT, stream.anchor_field: anchor_range}
    ).batch_size(5000)
    selected = []
    for document in cursor:
        anchor = document[stream.anchor_field]
        run_date = eligibility.first_run_date(anchor, dates)
        if run_date is None:
            continue
        selected.append(
            SelectedRecord(
                record_id=document["_id"],
                reference=_int_or_none(field_value(document, stream.reference_field)),
                post_number=_str_or_none(field_value(document, "deaneryPostNumber")),
                anchor_date=anchor.date(),
                run_date=run_date,
                invalid_fields=tuple(stream.invalid_fields(document)),
            )
        )
    selected.sort(key=lambda r: (r.run_date, r.post_number or "", r.anchor_date, r.reference or 0, str(r.record_id)))
    return selected


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
