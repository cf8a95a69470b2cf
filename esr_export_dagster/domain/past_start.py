"""Applicant records whose trainee has already started: withheld from every file unless a data engineer decides.

The stale-record sensor tells the support team, as soon as a record's start date has come, to ask the
trust to hire the doctor by hand. A file sent after that (a backfill of a missed day, a late re-run)
would make ESR hire the same trainee a second time. So at run time, by the wall clock in UTC, a record
whose start date is today or earlier stays TO_EXPORT and out of the file; the run counts it, and only a
run launched with ``export_past_start: true`` (after the trust confirmed it did not hire by hand) sends it.
Notifications have no start date and are never withheld.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable
from typing import Protocol

RUN_CONFIG_FLAG = "export_past_start"


class Candidate(Protocol):
    @property
    def record_id(self) -> Hashable: ...

    @property
    def anchor_date(self) -> dt.date: ...

    @property
    def run_date(self) -> dt.date: ...

    @property
    def is_valid(self) -> bool: ...


def has_started(start_date: dt.date, today: dt.date) -> bool:
    """Start date on or before today (UTC): the trust may already have hired by hand."""
    return start_date <= today


def withheld_past_start(records: Iterable[Candidate], today: dt.date | None) -> dict[Hashable, dt.date]:
    """The valid records to keep out of the files, each with its run date; ``today`` None: withhold nothing.

    Invalid records are left to the validity handling: they become INVALID_DATA whatever their start date.
    """
    if today is None:
        return {}
    return {
        record.record_id: record.run_date
        for record in records
        if record.is_valid and has_started(record.anchor_date, today)
    }
