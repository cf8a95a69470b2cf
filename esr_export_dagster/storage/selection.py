"""Finding the records a deanery's export should take for a span of run dates.

Records are read whole (on the local stand-in a projection costs more than it saves), their mandatory
values are looked at to decide validity, and only ids and scheduling fields leave this module: the
selection carries no personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

from pymongo.database import Database

from ..domain.deaneries import require_deanery
from ..domain.file_plan import PlannedRecord
from ..domain.records import TO_EXPORT, field_value, invalid_mandatory_fields
from ..domain.window import EligibilityWindow
from .collections import APP_RECORDS


@dataclass(frozen=True)
class SelectedRecord:
    record_id: Hashable
    placement_id: int | None
    post_number: str | None
    start_date: dt.date
    run_date: dt.date
    invalid_fields: tuple[str, ...]

    @property
    def is_valid(self) -> bool:
        return not self.invalid_fields

    def planned(self) -> PlannedRecord:
        if not self.is_valid or self.placement_id is None or self.post_number is None:
            raise ValueError(f"Record {self.record_id} is not valid for export")
        return PlannedRecord(
            record_id=self.record_id,
            placement_id=self.placement_id,
            post_number=self.post_number,
            start_date=self.start_date,
            run_date=self.run_date,
        )


def select_eligible(
    database: Database,
    deanery: str,
    run_dates: Sequence[dt.date],
    window: EligibilityWindow,
    records_collection: str = APP_RECORDS,
) -> list[SelectedRecord]:
    """``TO_EXPORT`` records of ``deanery`` eligible on at least one of ``run_dates``.

    Each record is assigned to the first of those dates whose window holds it, which is what running
    the dates one by one, in order, would have exported it on.
    """
    require_deanery(deanery)
    if not run_dates:
        return []
    dates = sorted(set(run_dates))
    start_from, start_to = window.start_date_range(dates[0], dates[-1])
    cursor = database[records_collection].find(
        {"deanery": deanery, "status": TO_EXPORT, "startDate": {"$gte": start_from, "$lt": start_to}}
    ).batch_size(5000)
    selected = []
    for document in cursor:
        start = document["startDate"]
        run_date = window.first_run_date(start, dates)
        if run_date is None:
            continue
        selected.append(
            SelectedRecord(
                record_id=document["_id"],
                placement_id=_int_or_none(field_value(document, "placementId")),
                post_number=_str_or_none(field_value(document, "deaneryPostNumber")),
                start_date=start.date(),
                run_date=run_date,
                invalid_fields=tuple(invalid_mandatory_fields(document)),
            )
        )
    selected.sort(key=lambda r: (r.run_date, r.post_number or "", r.start_date, r.placement_id or 0, str(r.record_id)))
    return selected


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
