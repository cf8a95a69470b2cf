"""Records still TO_EXPORT that should already have gone, and what to tell people about them.

Each applicant record has a hard deadline: once its start date is less than the window's lower bound
(2 days) away, no scheduled run will ever export it again; once the start date has come, no run at all
sends it without a data engineer's decision (domain/past_start.py), and the trust has to hire by hand.
A notification has no such deadline but must not linger: one still TO_EXPORT a day after it was
created, once the DNC export that should have carried it is over, has missed its file.
This module decides, from ids and dates only, which records are in trouble, which partitions would still
export them, and what the support team should be told. It has no Dagster and no I/O, so every rule is
unit-tested with a clock the test controls.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from .deaneries import DEANERIES
from .past_start import RUN_CONFIG_FLAG
from .window import DAILY_RUN_TIME_UTC, CreatedBeforeExportTime, EligibilityWindow

PAST_START = "past_start"
AT_RISK = "at_risk"
OVERDUE = "overdue"
LATE_NOTIFICATION = "late_notification"
# Records whose start (or creation) date is missing or not a date: no date range can ever select them.
UNDATED = "undated"
UNDATED_NOTIFICATION = "undated_notification"
# Records whose deanery is not one of ESR's codes: no deanery's export selects them, ever.
UNKNOWN_DEANERY = "unknown_deanery"
NOTIFICATION_UNKNOWN_DEANERY = "notification_unknown_deanery"
NOTIFICATION_CATEGORIES = frozenset({LATE_NOTIFICATION, UNDATED_NOTIFICATION, NOTIFICATION_UNKNOWN_DEANERY})
# Grouped under this instead of the stored value, which is not on the allow-list and so is not shown.
UNKNOWN_DEANERY_LABEL = "?"
SAMPLE_SIZE = 10
REANNOUNCE_AFTER = dt.timedelta(hours=24)
NOTIFICATION_LATE_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class PendingRecord:
    deanery: str
    placement_id: int | None
    # None: missing, or stored as something that is not a date.
    start_date: dt.date | None


@dataclass(frozen=True)
class PendingNotification:
    deanery: str
    notification_id: int | None
    # None: missing, or stored as something that is not a date.
    created: dt.datetime | None


@dataclass(frozen=True)
class Finding:
    """One deanery's records of one category, described without personal data."""

    deanery: str
    category: str
    count: int
    # The earliest start date (applicants) or creation date (notifications) among them; None when undated.
    earliest_date: dt.date | None
    # Placement ids (applicants) or notification ids.
    sample_ids: tuple[int, ...]
    # Partitions whose run would export these records now (none for records past their start).
    catch_up_dates: tuple[dt.date, ...]

    @property
    def is_notification(self) -> bool:
        return self.category in NOTIFICATION_CATEGORIES

    @property
    def key(self) -> str:
        return f"{self.deanery}|{self.category}"


@dataclass(frozen=True)
class StalePolicy:
    window: EligibilityWindow = field(default_factory=EligibilityWindow)
    scheduled_time_utc: dt.time = DAILY_RUN_TIME_UTC
    grace: dt.timedelta = dt.timedelta(hours=1)
    notification_cutoff: CreatedBeforeExportTime = field(default_factory=CreatedBeforeExportTime)
    notification_late_after: dt.timedelta = NOTIFICATION_LATE_AFTER

    def overdue_after(self, today: dt.date) -> dt.datetime:
        return dt.datetime.combine(today, self.scheduled_time_utc, tzinfo=dt.UTC) + self.grace

    def notification_late_at(self, created: dt.datetime) -> dt.datetime:
        """A day after its creation, and never while the DNC export that should carry it may still be running.

        One created just after a day's cut-off is due in the next day's run, a day later almost to the
        minute: without the second bound it would be reported while that run is still queued.
        """
        first_export = self.notification_cutoff.first_cutoff_after(created)
        return max(created + self.notification_late_after, first_export + self.grace)


def classify(records: Iterable[PendingRecord], now: dt.datetime, policy: StalePolicy) -> list[Finding]:
    """Group TO_EXPORT records into past start, at risk and overdue, per deanery.

    - past start: the start date has come; only a human can act now.
    - at risk: it starts before today's window opens (under 2 days away), so no scheduled run will
      take it again; the partition of its last eligible day still would.
    - overdue: today's run should have taken it (the scheduled time plus grace has passed).
    - undated: its start date is missing or not a date; the deanery's next run sets it INVALID_DATA.
    - unknown deanery: any of the above, in a record whose deanery is not an ESR code; only fixing the
      record in TIS can help.
    """
    today = now.astimezone(dt.UTC).date()
    overdue_now = now >= policy.overdue_after(today)
    grouped: dict[tuple[str, str], list[PendingRecord]] = defaultdict(list)
    for record in records:
        category = _category(record.start_date, today, overdue_now, policy.window)
        if category is not None:
            grouped[_group_key(record.deanery, category, UNKNOWN_DEANERY)].append(record)
    findings = []
    for (deanery, category), members in sorted(grouped.items()):
        members.sort(key=lambda r: (r.start_date or dt.date.min, r.placement_id or 0))
        findings.append(
            Finding(
                deanery=deanery,
                category=category,
                count=len(members),
                earliest_date=members[0].start_date,
                sample_ids=tuple(r.placement_id for r in members[:SAMPLE_SIZE] if r.placement_id is not None),
                catch_up_dates=_catch_up_dates(category, members, today, policy.window),
            )
        )
    return findings


def classify_notifications(
    records: Iterable[PendingNotification], now: dt.datetime, policy: StalePolicy
) -> list[Finding]:
    """Per deanery, the notifications still TO_EXPORT past their ``policy.notification_late_at``.

    Today's partition of the deanery's notification export would take them all (each was created before
    today's cut-off), so that is the catch-up run to request.
    """
    now_utc = now.astimezone(dt.UTC).replace(tzinfo=None)
    today = now_utc.date()
    grouped: dict[tuple[str, str], list[PendingNotification]] = defaultdict(list)
    for record in records:
        if record.created is None:
            # Never late and never on time: no cut-off can ever select it, so it is reported at once.
            grouped[_group_key(record.deanery, UNDATED_NOTIFICATION, NOTIFICATION_UNKNOWN_DEANERY)].append(record)
        elif now_utc > policy.notification_late_at(record.created):
            grouped[_group_key(record.deanery, LATE_NOTIFICATION, NOTIFICATION_UNKNOWN_DEANERY)].append(record)
    findings = []
    for (deanery, category), members in sorted(grouped.items()):
        members.sort(key=lambda r: (r.created or dt.datetime.min, r.notification_id or 0))
        earliest = members[0].created
        findings.append(
            Finding(
                deanery=deanery,
                category=category,
                count=len(members),
                earliest_date=earliest.date() if earliest is not None else None,
                sample_ids=tuple(r.notification_id for r in members[:SAMPLE_SIZE] if r.notification_id is not None),
                catch_up_dates=(today,) if category in (LATE_NOTIFICATION, UNDATED_NOTIFICATION) else (),
            )
        )
    return findings


def _group_key(deanery: str, category: str, unknown_category: str) -> tuple[str, str]:
    """A record of no ESR deanery goes in ``unknown_category``, under a label instead of its stored code."""
    return (deanery, category) if deanery in DEANERIES else (UNKNOWN_DEANERY_LABEL, unknown_category)


def _category(start: dt.date | None, today: dt.date, overdue_now: bool, window: EligibilityWindow) -> str | None:
    if start is None:
        return UNDATED
    if start <= today:
        return PAST_START
    if start < today + window.lower:
        return AT_RISK
    if overdue_now and window.is_eligible(start, today):
        return OVERDUE
    return None


def _catch_up_dates(
    category: str, members: list[PendingRecord], today: dt.date, window: EligibilityWindow
) -> tuple[dt.date, ...]:
    # Today's run of the deanery exports the overdue records and sets the undated ones INVALID_DATA.
    if category in (OVERDUE, UNDATED):
        return (today,)
    if category == AT_RISK:
        return tuple(sorted({window.last_run_date_holding(r.start_date) for r in members if r.start_date is not None}))
    return ()


# -- announcements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    key: str
    kind: str  # "new", "reminder", "worse" or "cleared"
    text: str


class Announced(NamedTuple):
    """What was last said about a problem: its record count then, and when."""

    count: int
    at: dt.datetime


def plan_announcements(
    findings: Iterable[Finding],
    announced: Mapping[str, Announced],
    now: dt.datetime,
    ui_url: str,
    policy: StalePolicy,
) -> tuple[list[Announcement], dict[str, Announced]]:
    """What to say this tick, and the new memory of what was said.

    A problem is announced when it appears, again when it gets worse (more records), once a day while it
    lasts, and once more when it clears; an unchanged problem is not repeated every tick.
    """
    current = {finding.key: finding for finding in findings}
    remembered: dict[str, Announced] = {}
    announcements: list[Announcement] = []
    for key, finding in current.items():
        previous = announced.get(key)
        if previous is None:
            kind = "new"
        elif finding.count > previous.count:
            kind = "worse"
        elif now - previous.at >= REANNOUNCE_AFTER:
            kind = "reminder"
        else:
            # The same or fewer records is no news; the next "worse" is judged against today's count.
            remembered[key] = Announced(finding.count, previous.at)
            continue
        announcements.append(Announcement(key, kind, describe(finding, kind, ui_url, policy)))
        remembered[key] = Announced(finding.count, now)
    for key in sorted(set(announced) - set(current)):
        deanery, category = key.split("|", 1)
        announcements.append(Announcement(key, "cleared", describe_cleared(deanery, category)))
    return announcements, remembered


_HEADLINES = {
    PAST_START: "{count} applicant record(s) in {deanery} were never sent to ESR and the trainee has already started",
    AT_RISK: "{count} applicant record(s) in {deanery} start in under {lower} days and no scheduled export will send them",
    OVERDUE: "{count} applicant record(s) in {deanery} should have gone to ESR in today's {time} export and have not",
    LATE_NOTIFICATION: "{count} notification(s) in {deanery} were created over a day ago and have not gone to ESR in a DNC file",
    UNDATED: "{count} applicant record(s) in {deanery} have a start date that is missing or not a date, so no export can select them",
    UNDATED_NOTIFICATION: (
        "{count} notification(s) in {deanery} have a creation date that is missing or not a date, so no export can select them"
    ),
    UNKNOWN_DEANERY: "{count} applicant record(s) due for export have a deanery that is not an ESR deanery code, so no export will ever send them",
    NOTIFICATION_UNKNOWN_DEANERY: "{count} notification(s) created over a day ago have a deanery that is not an ESR deanery code, so no export will ever send them",
}
_ACTIONS = {
    PAST_START: (
        "No run sends them any more: runs withhold records whose trainee has started, so nobody is hired twice. "
        "Tell the trust(s) to hire by hand, then set the records' status in TIS. Only if a trust confirms it did "
        f"not hire by hand and ESR must still get them, re-materialize app_export_file for the partition with run "
        f"config {RUN_CONFIG_FLAG}: true."
    ),
    AT_RISK: "Backfill the partition(s) below now (catch-up runs are requested automatically when enabled).",
    OVERDUE: "Check today's run of this deanery in Dagster; re-materialize today's partition if it failed.",
    LATE_NOTIFICATION: (
        "Check the deanery's notification export runs in Dagster; re-materialize today's partition of "
        "notification_export_file (catch-up runs are requested automatically when enabled)."
    ),
    UNDATED: (
        "The deanery's next export run sets them INVALID_DATA with startDate named in generationError (a catch-up "
        "run is requested when enabled); correct the placement's start date in TIS so that a valid record is made."
    ),
    UNDATED_NOTIFICATION: (
        "The deanery's next notification export run sets them INVALID_DATA with createdDate named in "
        "generationError (a catch-up run is requested when enabled); have the notifications regenerated in TIS."
    ),
    UNKNOWN_DEANERY: "Correct the records' deanery in TIS to one of ESR's 13 codes; that deanery's next run exports them.",
    NOTIFICATION_UNKNOWN_DEANERY: (
        "Correct the notifications' deanery in TIS to one of ESR's 13 codes; that deanery's next run exports them."
    ),
}
_PREFIX = {
    "new": "ESR export alert",
    "worse": "ESR export alert (more records)",
    "reminder": "ESR export reminder (still unresolved)",
}


def describe(finding: Finding, kind: str, ui_url: str, policy: StalePolicy) -> str:
    """Plain words for the support team: counts, dates, record ids and the action; no personal data."""
    date_label, ids_label, asset = (
        ("Earliest created", "Notification ids", "notification_export_file")
        if finding.is_notification
        else ("Earliest start date", "Placement ids", "app_export_file")
    )
    lines = [
        f"{_PREFIX[kind]}: "
        + _HEADLINES[finding.category].format(
            count=finding.count,
            deanery=finding.deanery,
            lower=policy.window.earliest_start_offset_days,
            time=policy.scheduled_time_utc.strftime("%H:%M"),
        )
        + ".",
        f"{date_label}: {finding.earliest_date.isoformat() if finding.earliest_date else 'none (missing or not a date)'}.",
        ids_label
        + (f" (first {len(finding.sample_ids)} of {finding.count})" if finding.count > len(finding.sample_ids) else "")
        + ": "
        + (", ".join(str(p) for p in finding.sample_ids) or "none recorded")
        + ".",
        f"What to do: {_ACTIONS[finding.category]}",
    ]
    for run_date in finding.catch_up_dates:
        lines.append(
            f"Partition {run_date.isoformat()}|{finding.deanery}: {partitions_link(ui_url, run_date, finding.deanery, asset)}"
        )
    return "\n".join(lines)


def describe_cleared(deanery: str, category: str) -> str:
    if category == UNKNOWN_DEANERY:
        return "ESR export resolved: no applicant record with an unknown deanery is waiting any more."
    if category == NOTIFICATION_UNKNOWN_DEANERY:
        return "ESR export resolved: no notification with an unknown deanery is waiting any more."
    if category in NOTIFICATION_CATEGORIES:
        return f"ESR export resolved: {deanery} no longer has late notifications waiting."
    return f"ESR export resolved: {deanery} no longer has {category.replace('_', ' ')} applicant records waiting."


def partitions_link(ui_url: str, run_date: dt.date, deanery: str, asset: str = "app_export_file") -> str:
    return f"{ui_url.rstrip('/')}/assets/{asset}?view=partitions&partition={run_date.isoformat()}|{deanery}"
