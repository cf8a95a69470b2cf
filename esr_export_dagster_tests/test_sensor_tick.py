"""The sensors' typed cursors and the undelivered-files announcement plan, with a clock the test controls."""

from __future__ import annotations

import datetime as dt
import json

from esr_export_dagster.domain.sensor_tick import (
    StaleSensorCursor,
    UndeliveredAlert,
    UndeliveredFilesCursor,
    plan_file_announcements,
)
from esr_export_dagster.domain.stale_records import Announced

NOW = dt.datetime(2021, 7, 31, 14, 0, tzinfo=dt.UTC)
FILE = "DE_LDN_APP_20210731_00000001.DAT"


def test_the_stale_cursor_reads_back_what_it_wrote():
    cursor = StaleSensorCursor(
        {"EOE|overdue": Announced(3, NOW)}, (UndeliveredAlert("ESR export alert: ...", ("teams",)),)
    )

    assert StaleSensorCursor.parse(cursor.serialise()) == cursor
    assert StaleSensorCursor.parse(None) == StaleSensorCursor()


def test_the_undelivered_files_cursor_reads_the_layout_earlier_versions_stored():
    stored = json.dumps(
        {
            "announced": {FILE: NOW.isoformat()},
            "undelivered_alerts": [{"text": "ESR delivery: ...", "channels": ["slack"]}],
        },
        sort_keys=True,
    )

    cursor = UndeliveredFilesCursor.parse(stored)

    assert cursor == UndeliveredFilesCursor({FILE: NOW}, (UndeliveredAlert("ESR delivery: ...", ("slack",)),))
    assert cursor.serialise() == stored


def test_an_undelivered_file_is_announced_once_again_a_day_later_and_cleared_when_delivered():
    first = plan_file_announcements([FILE], {}, NOW)
    quiet = plan_file_announcements([FILE], first.announced, NOW + dt.timedelta(hours=23))
    reminder = plan_file_announcements([FILE], quiet.announced, NOW + dt.timedelta(days=1))
    delivered = plan_file_announcements([], reminder.announced, NOW + dt.timedelta(days=1, minutes=15))

    assert (first.due, first.cleared) == ([FILE], [])
    assert (quiet.due, quiet.cleared, quiet.announced) == ([], [], {FILE: NOW})
    assert reminder.due == [FILE] and reminder.announced == {FILE: NOW + dt.timedelta(days=1)}
    assert (delivered.due, delivered.cleared, delivered.announced) == ([], [FILE], {})
