"""What the stale-record sensor remembers between ticks, and the one line each tick reports.

The cursor is shown on the sensor's page, so it holds only what the next tick needs: per announced problem
its record count and when it was last announced (epoch seconds), and the alerts a channel failed to take.
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


@dataclass(frozen=True)
class UndeliveredAlert:
    text: str
    channels: tuple[str, ...]


@dataclass
class StaleSensorCursor:
    # "EOE|past_start" -> (record count, last announced, epoch seconds)
    announced: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Kept only while a channel is failing; empty otherwise.
    undelivered: list[UndeliveredAlert] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: str | None) -> StaleSensorCursor:
        """The cursor as stored; the earlier layout ({"count", "announced_at"} per key) is read too."""
        stored: Mapping[str, Any] = json.loads(raw) if raw else {}
        announced = {}
        for key, value in (stored.get("announced") or {}).items():
            if isinstance(value, Mapping):
                at = int(dt.datetime.fromisoformat(value["announced_at"]).timestamp())
                announced[key] = (int(value["count"]), at)
            else:
                announced[key] = (int(value[0]), int(value[1]))
        undelivered = []
        for alert in stored.get("undelivered") or []:
            if isinstance(alert, Mapping):
                undelivered.append(UndeliveredAlert(alert["text"], tuple(alert["channels"])))
            else:
                undelivered.append(UndeliveredAlert(alert[0], tuple(alert[1])))
        return cls(announced, undelivered)

    def serialise(self) -> str:
        stored = {
            "announced": {key: list(value) for key, value in sorted(self.announced.items())},
            "undelivered": [[alert.text, list(alert.channels)] for alert in self.undelivered],
        }
        return json.dumps(stored, separators=(",", ":"))

    def memory(self) -> dict[str, dict[str, Any]]:
        """In the form ``plan_announcements`` reads."""
        return {
            key: {
                "count": count,
                "announced_at": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
            }
            for key, (count, at) in self.announced.items()
        }

    def remember(self, memory: Mapping[str, Mapping[str, Any]]) -> None:
        self.announced = {
            key: (int(value["count"]), int(dt.datetime.fromisoformat(value["announced_at"]).timestamp()))
            for key, value in memory.items()
        }


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
