"""Eligibility: which records a run for date D exports.

Applicants (APP) go by their start date, within ESR's window; notifications (DNC) by their creation time,
before the day's notification export. Both rules are judged against the partition's date, never the wall
clock, and both answer the same two questions for the selection (``anchor_range``, ``first_run_date``).


ESR wants applicants between 13 weeks and 2 days before they start (esr-interface.md §3). A record
qualifies on run date D when ``D + earliest_start_offset_days <= startDate < D + latest_start_offset_weeks``:
the lower bound is inclusive, the upper one exclusive. Eligibility is always judged against the
partition's date, never the wall clock, so a backfill of a missed day exports what that day should have.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

# When the daily APP export runs: the incident report's 13:00 UTC (14:00 in British summer time). The
# schedule's cron, the stale-record sensor's "overdue" rule and its alert texts all read it from here.
DAILY_RUN_TIME_UTC = dt.time(13, 0)
# The notification (DNC) export runs an hour after the APP export, as in production.
NOTIFICATION_RUN_TIME_UTC = dt.time(14, 0)


@dataclass(frozen=True)
class EligibilityWindow:
    earliest_start_offset_days: int = 2
    latest_start_offset_weeks: int = 13

    def __post_init__(self) -> None:
        if self.earliest_start_offset_days < 0:
            raise ValueError("earliest_start_offset_days must not be negative")
        if dt.timedelta(weeks=self.latest_start_offset_weeks) <= dt.timedelta(days=self.earliest_start_offset_days):
            raise ValueError(
                "latest_start_offset_weeks must lie after earliest_start_offset_days: the window would be empty"
            )

    @property
    def lower(self) -> dt.timedelta:
        return dt.timedelta(days=self.earliest_start_offset_days)

    @property
    def upper(self) -> dt.timedelta:
        return dt.timedelta(weeks=self.latest_start_offset_weeks)

    def start_date_range(self, first_run_date: dt.date, last_run_date: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """Half-open ``[from, to)`` range of start dates eligible on any run date of the given span."""
        return (
            _midnight(first_run_date + self.lower),
            _midnight(last_run_date + self.upper),
        )

    def anchor_range(self, first_run_date: dt.date, last_run_date: dt.date) -> tuple[dt.datetime | None, dt.datetime]:
        return self.start_date_range(first_run_date, last_run_date)

    def is_eligible(self, start: dt.date | dt.datetime, run_date: dt.date) -> bool:
        start_day = _as_date(start)
        return run_date + self.lower <= start_day < run_date + self.upper

    def first_run_date(self, start: dt.date | dt.datetime, run_dates: Sequence[dt.date]) -> dt.date | None:
        """The earliest of ``run_dates`` (sorted ascending) on which a record starting on ``start`` is eligible.

        Running a span of days in one go must give exactly what running them one by one in order gives:
        a record goes out on the first of those days whose window holds it.
        """
        start_day = _as_date(start)
        earliest = start_day - self.upper + dt.timedelta(days=1)
        index = bisect.bisect_left(run_dates, earliest)
        if index < len(run_dates) and run_dates[index] <= start_day - self.lower:
            return run_dates[index]
        return None

    def last_run_date_holding(self, start: dt.date | dt.datetime) -> dt.date:
        """The last run date whose window still holds a record starting on ``start``."""
        return _as_date(start) - self.lower

    def describe(self) -> str:
        return f"D + {self.earliest_start_offset_days} days <= startDate < D + {self.latest_start_offset_weeks} weeks"


@dataclass(frozen=True)
class CreatedBeforeExportTime:
    """A notification goes out in the first export after it was created: on run date D, everything still
    TO_EXPORT that was created before D at the export time (14:00 UTC by default).

    A backfill of a missed day D exports what D should have sent; a notification created before the first
    day of a span goes out on that first day, as running the days one by one would have sent it.
    """

    export_time_utc: dt.time = NOTIFICATION_RUN_TIME_UTC

    def cutoff(self, run_date: dt.date) -> dt.datetime:
        return dt.datetime.combine(run_date, self.export_time_utc)

    def anchor_range(self, first_run_date: dt.date, last_run_date: dt.date) -> tuple[dt.datetime | None, dt.datetime]:
        return None, self.cutoff(last_run_date)

    def first_cutoff_after(self, created: dt.datetime) -> dt.datetime:
        """The export time of the first daily run that should carry a notification created at ``created``."""
        created = _naive_utc(created)
        same_day = self.cutoff(created.date())
        return same_day if created < same_day else self.cutoff(created.date() + dt.timedelta(days=1))

    def is_eligible(self, created: dt.datetime, run_date: dt.date) -> bool:
        return _naive_utc(created) < self.cutoff(run_date)

    def first_run_date(self, created: dt.datetime, run_dates: Sequence[dt.date]) -> dt.date | None:
        """The earliest of ``run_dates`` (sorted ascending) whose export time comes after ``created``."""
        created = _naive_utc(created)
        index = bisect.bisect_left(run_dates, created.date())
        for run_date in run_dates[index : index + 2]:
            if created < self.cutoff(run_date):
                return run_date
        return None

    def describe(self) -> str:
        return f"createdDate < D {self.export_time_utc:%H:%M} UTC"


def within_anchor_range(anchor: object, anchor_from: dt.datetime | None, anchor_to: dt.datetime) -> bool:
    """Whether a stored start or creation date falls in an ``anchor_range``, ``[anchor_from, anchor_to)``, as
    MongoDB would judge the range: a value that is not a datetime never does."""
    if not isinstance(anchor, dt.datetime):
        return False
    anchor = _naive_utc(anchor)
    return (anchor_from is None or anchor_from <= anchor) and anchor < anchor_to


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """MongoDB hands back naive UTC datetimes; an aware one is brought to the same footing."""
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min)
