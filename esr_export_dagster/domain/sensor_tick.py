"""What the sensors remember between ticks, what they decide each tick, and the one line a tick reports.

A cursor is shown on the sensor's page, so it holds only what the next tick needs: per announced problem
(stale records) or file (undelivered files) when it was last announced, and the alerts a channel failed to
take. Each cursor is a typed value here; its JSON form exists only in ``parse`` and ``serialise``, which
also read the layouts earlier versions stored, so an upgrade announces nothing twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stale_records import (
    AT_RISK,
    LATE_NOTIFICATION,
    NOTIFICATION_UNKNOWN_DEANERY,
    OVERDUE,
    PAST_START,
    UNKNOWN_DEANERY,
    Announced,
    Announcement,
    Finding,
)

_LABELS = {
    PAST_START: "past start",
    AT_RISK: "at risk",
    OVERDUE: "overdue",
    LATE_NOTIFICATION: "late notifications",
    UNKNOWN_DEANERY: "unknown deanery",
    NOTIFICATION_UNKNOWN_DEANERY: "notifications of unknown deanery",
}
# An undelivered file is announced again once a day while it stays undelivered.
FILE_REANNOUNCE_AFTER = dt.timedelta(days=1)


@dataclass(frozen=True)
class UndeliveredAlert:
    """An alert some channels did not take: it is tried again on those channels at the next tick."""

    text: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class StaleSensorCursor:
    # "EOE|past_start" -> what was last said about it.
    announced: dict[str, Announced] = field(default_factory=dict)
    # Kept only while a channel is failing; empty otherwise.
    undelivered: tuple[UndeliveredAlert, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> StaleSensorCursor:
        """The cursor as stored; the earlier layout ({"count", "announced_at"} per key) is read too."""
        stored: Mapping[str, Any] = json.loads(raw) if raw else {}
        announced = {}
        for key, value in (stored.get("announced") or {}).items():
            if isinstance(value, Mapping):
                announced[key] = Announced(int(value["count"]), dt.datetime.fromisoformat(value["announced_at"]))
            else:
                announced[key] = Announced(int(value[0]), dt.datetime.fromtimestamp(int(value[1]), dt.UTC))
        return cls(announced, _parse_alerts(stored.get("undelivered")))

    def serialise(self) -> str:
        stored = {
            # Whole epoch seconds keep the cursor short: the page shows it, and a day's reminder needs no more.
            "announced": {key: [count, int(at.timestamp())] for key, (count, at) in sorted(self.announced.items())},
            "undelivered": [[alert.text, list(alert.channels)] for alert in self.undelivered],
        }
        return json.dumps(stored, separators=(",", ":"))


@dataclass(frozen=True)
class UndeliveredFilesCursor:
    # File name -> when it was last announced as undelivered.
    announced: dict[str, dt.datetime] = field(default_factory=dict)
    undelivered: tuple[UndeliveredAlert, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> UndeliveredFilesCursor:
        stored: Mapping[str, Any] = json.loads(raw) if raw else {}
        announced = {name: dt.datetime.fromisoformat(at) for name, at in (stored.get("announced") or {}).items()}
        return cls(announced, _parse_alerts(stored.get("undelivered_alerts")))

    def serialise(self) -> str:
        stored = {
            "announced": {name: at.isoformat() for name, at in sorted(self.announced.items())},
            "undelivered_alerts": [{"text": a.text, "channels": list(a.channels)} for a in self.undelivered],
        }
        return json.dumps(stored, sort_keys=True)


def _parse_alerts(stored: Any) -> tuple[UndeliveredAlert, ...]:
    """Alerts stored as [text, channels] or, in earlier layouts, as {"text", "channels"}."""
    alerts = []
    for alert in stored or []:
        if isinstance(alert, Mapping):
            alerts.append(UndeliveredAlert(alert["text"], tuple(alert["channels"])))
        else:
            alerts.append(UndeliveredAlert(alert[0], tuple(alert[1])))
    return tuple(alerts)


@dataclass(frozen=True)
class FileAnnouncements:
    # Undelivered past the alert time and not announced in the last day: announce now, request their runs.
    due: list[str]
    # Announced before and now delivered.
    cleared: list[str]
    # The memory for the next tick.
    announced: dict[str, dt.datetime]


def plan_file_announcements(
    overdue: Iterable[str], announced: Mapping[str, dt.datetime], now: dt.datetime
) -> FileAnnouncements:
    """Which undelivered files to announce now (first, then daily) and which announced files were delivered."""
    overdue = sorted(set(overdue))
    due = [name for name in overdue if name not in announced or now - announced[name] >= FILE_REANNOUNCE_AFTER]
    cleared = sorted(name for name in announced if name not in overdue)
    remembered = {name: at for name, at in announced.items() if name not in cleared}
    remembered.update({name: now for name in due})
    return FileAnnouncements(due, cleared, remembered)


def tick_outcome(
    findings: Sequence[Finding],
    announcements: Iterable[Announcement],
    undelivered: int,
    catch_up_runs: int,
) -> str:
    """One line: what was announced, per category with its deaneries, what was left unchanged, runs requested."""
    by_label: dict[str, list[str]] = defaultdict(list)
    sent = cleared = 0
    for announcement in announcements:
        sent += 1
        cleared += announcement.kind == "cleared"
        deanery, category = announcement.key.split("|", 1)
        label = _LABELS.get(category, category.replace("_", " "))
        if announcement.kind == "cleared":
            label = f"cleared {label}"
        elif announcement.kind == "reminder":
            label = f"reminder {label}"
        by_label[label].append(deanery)
    parts = []
    if sent:
        parts.append(
            f"{sent} alert(s) sent: " + "; ".join(f"{label} {', '.join(ds)}" for label, ds in by_label.items())
        )
    else:
        parts.append("0 alerts sent")
    unchanged = len(findings) - (sent - cleared)
    if findings and unchanged > 0:
        parts.append(f"{unchanged} problem(s) unchanged since announced")
    if not findings and not sent:
        parts[0] = "Nothing stuck: 0 alerts sent"
    if undelivered:
        parts.append(f"{undelivered} alert(s) not delivered, retried next tick")
    parts.append(f"{catch_up_runs} catch-up run(s) requested")
    return "; ".join(parts)
