"""Pure rules of the stale-record sensor: categories (applicants and notifications), catch-up partitions,
announcements and their text."""

from __future__ import annotations

import datetime as dt

from esr_export_dagster.domain.stale_records import (
    AT_RISK,
    LATE_NOTIFICATION,
    OVERDUE,
    PAST_START,
    UNKNOWN_DEANERY,
    PendingNotification,
    PendingRecord,
    StalePolicy,
    classify,
    classify_notifications,
    plan_announcements,
)
from esr_export_dagster.domain.window import CreatedBeforeExportTime

UTC = dt.UTC
TODAY = dt.date(2021, 7, 31)
POLICY = StalePolicy()
UI = "http://dagster.example:3000"


def record(days_from_today: int, deanery: str = "EOE", placement: int = 1) -> PendingRecord:
    return PendingRecord(deanery, placement, TODAY + dt.timedelta(days=days_from_today))


def categories(records, now) -> dict[str, int]:
    return {f.key: f.count for f in classify(records, now, POLICY)}


def test_each_record_falls_into_the_category_its_start_date_and_the_clock_say():
    records = [record(-1), record(0), record(1), record(2), record(90), record(91)]
    after_grace = dt.datetime(2021, 7, 31, 14, 0, tzinfo=UTC)

    assert categories(records, after_grace) == {"EOE|past_start": 2, "EOE|at_risk": 1, "EOE|overdue": 2}


def test_records_due_today_are_only_overdue_once_the_scheduled_time_and_grace_have_passed():
    due = [record(10)]
    assert categories(due, dt.datetime(2021, 7, 31, 13, 59, tzinfo=UTC)) == {}
    assert categories(due, dt.datetime(2021, 7, 31, 14, 0, tzinfo=UTC)) == {"EOE|overdue": 1}


def test_catch_up_targets_today_for_overdue_and_the_last_eligible_day_for_at_risk_records():
    findings = {
        f.category: f for f in classify([record(1), record(5)], dt.datetime(2021, 7, 31, 15, tzinfo=UTC), POLICY)
    }

    assert findings[OVERDUE].catch_up_dates == (TODAY,)
    assert findings[AT_RISK].catch_up_dates == (TODAY - dt.timedelta(days=1),)


def test_records_past_their_start_are_never_given_a_catch_up_partition():
    (finding,) = classify([record(-3)], dt.datetime(2021, 7, 31, 9, tzinfo=UTC), POLICY)
    assert finding.category == PAST_START and finding.catch_up_dates == ()


def test_a_finding_samples_at_most_ten_placements_earliest_first():
    records = [record(-1, placement=100 - n) for n in range(25)]
    (finding,) = classify(records, dt.datetime(2021, 7, 31, 9, tzinfo=UTC), POLICY)
    assert finding.count == 25
    assert finding.sample_ids == tuple(range(76, 86))


def test_announcements_say_new_worse_reminder_and_cleared_at_the_right_times():
    now = dt.datetime(2021, 8, 5, 9, tzinfo=UTC)
    findings = classify([record(-1)], now, POLICY)

    first, memory = plan_announcements(findings, {}, now, UI, POLICY)
    again, memory = plan_announcements(findings, memory, now + dt.timedelta(minutes=15), UI, POLICY)
    worse, memory = plan_announcements(
        classify([record(-1), record(-2, placement=2)], now, POLICY), memory, now, UI, POLICY
    )
    reminder, memory = plan_announcements(
        classify([record(-1), record(-2, placement=2)], now, POLICY), memory, now + dt.timedelta(hours=24), UI, POLICY
    )
    cleared, memory = plan_announcements([], memory, now + dt.timedelta(hours=25), UI, POLICY)

    assert [a.kind for a in first] == ["new"]
    assert again == []
    assert [a.kind for a in worse] == ["worse"]
    assert [a.kind for a in reminder] == ["reminder"]
    assert [a.kind for a in cleared] == ["cleared"] and memory == {}


def test_an_alert_names_counts_dates_ids_the_action_and_the_partition_link():
    now = dt.datetime(2021, 8, 2, 9, tzinfo=UTC)
    (announcement,) = plan_announcements(classify([record(3, "LDN", 4242)], now, POLICY), {}, now, UI, POLICY)[0]

    assert announcement.text.splitlines() == [
        "ESR export alert: 1 applicant record(s) in LDN start in under 2 days and no scheduled export will send them.",
        "Earliest start date: 2021-08-03.",
        "Placement ids: 4242.",
        "What to do: Backfill the partition(s) below now (catch-up runs are requested automatically when enabled).",
        f"Partition 2021-08-01|LDN: {UI}/assets/app_export_file?view=partitions&partition=2021-08-01|LDN",
    ]


# --- notifications ---------------------------------------------------------------------------------------


def notification(hours_old: float, deanery: str = "EOE", notification_id: int = 1) -> PendingNotification:
    now = dt.datetime(2021, 7, 31, 15, 0)
    return PendingNotification(deanery, notification_id, now - dt.timedelta(hours=hours_old))


def test_a_notification_is_late_once_it_has_waited_more_than_a_day():
    now = dt.datetime(2021, 7, 31, 15, 0, tzinfo=UTC)
    pending = [notification(23), notification(24), notification(26, notification_id=2), notification(49, "LDN", 3)]

    findings = classify_notifications(pending, now, POLICY)

    assert [(f.deanery, f.category, f.count, f.sample_ids) for f in findings] == [
        ("EOE", LATE_NOTIFICATION, 1, (2,)),
        ("LDN", LATE_NOTIFICATION, 1, (3,)),
    ]
    # Today's partition takes everything created before today's cut-off, the late ones included.
    assert {f.catch_up_dates for f in findings} == {(TODAY,)}
    assert findings[1].earliest_date == dt.date(2021, 7, 29)


def test_a_late_notification_alert_names_ids_the_action_and_the_notification_partition():
    now = dt.datetime(2021, 7, 31, 15, 0, tzinfo=UTC)
    findings = classify_notifications([notification(30, "WES", 9001)], now, POLICY)

    (announcement,), memory = plan_announcements(findings, {}, now, UI, POLICY)
    (cleared,), _ = plan_announcements([], memory, now, UI, POLICY)

    lines = announcement.text.splitlines()
    assert lines[0] == (
        "ESR export alert: 1 notification(s) in WES were created over a day ago and have not gone to ESR in a DNC file."
    )
    assert lines[1:3] == ["Earliest created: 2021-07-30.", "Notification ids: 9001."]
    assert lines[-1] == (
        f"Partition 2021-07-31|WES: {UI}/assets/notification_export_file?view=partitions&partition=2021-07-31|WES"
    )
    assert cleared.text == "ESR export resolved: WES no longer has late notifications waiting."


def test_a_notification_created_just_after_a_cut_off_is_not_late_while_the_next_days_export_may_still_run():
    created = dt.datetime(2021, 7, 30, 14, 0, 30)  # just misses 30 July's file: 31 July's 14:00 run carries it
    pending = [PendingNotification("EOE", 1, created)]

    during_the_next_run = dt.datetime(2021, 7, 31, 14, 30, tzinfo=UTC)  # over a day old, its run still going
    after_the_next_run_and_grace = dt.datetime(2021, 7, 31, 15, 1, tzinfo=UTC)

    assert classify_notifications(pending, during_the_next_run, POLICY) == []
    (late,) = classify_notifications(pending, after_the_next_run_and_grace, POLICY)
    assert late.category == LATE_NOTIFICATION


def test_a_later_notification_export_time_moves_the_late_rule_with_it():
    created = dt.datetime(2021, 7, 30, 15, 0)  # before a 16:00 cut-off: in 30 July's file
    policy = StalePolicy(notification_cutoff=CreatedBeforeExportTime(dt.time(16, 0)))

    assert policy.notification_late_at(created) == dt.datetime(2021, 7, 31, 15, 0)  # a day, after 30 July 17:00
    assert POLICY.notification_late_at(created) == dt.datetime(2021, 7, 31, 15, 0)  # 31 July 14:00 + grace
    assert StalePolicy(notification_cutoff=CreatedBeforeExportTime(dt.time(15, 0))).notification_late_at(
        created
    ) == dt.datetime(2021, 7, 31, 16, 0)  # at 15:00 it just misses the day's file: 31 July 15:00 + grace


# --- records no deanery's export will ever select ----------------------------------------------------------


def test_records_with_an_unknown_deanery_are_one_finding_without_a_catch_up_partition():
    now = dt.datetime(2021, 7, 31, 14, 0, tzinfo=UTC)
    records = [record(1, "XYZ", 7), record(0, "?", 8), record(5, "eoe", 9), record(40, "LDN", 10)]

    findings = classify(records, now, POLICY)

    unknown = [f for f in findings if f.category == UNKNOWN_DEANERY]
    assert [(f.deanery, f.count, f.sample_ids, f.catch_up_dates) for f in unknown] == [("?", 3, (8, 7, 9), ())]
    assert {f.key for f in findings} == {"?|unknown_deanery", "LDN|overdue"}


def test_late_notifications_with_an_unknown_deanery_are_one_finding_without_a_catch_up_partition():
    now = dt.datetime(2021, 7, 31, 15, 0, tzinfo=UTC)
    findings = classify_notifications(
        [notification(30, "", 1), notification(30, "ZZZ", 2), notification(30, "WES", 3)], now, POLICY
    )

    assert [(f.key, f.sample_ids, f.catch_up_dates) for f in findings] == [
        ("?|notification_unknown_deanery", (1, 2), ()),
        ("WES|late_notification", (3,), (TODAY,)),
    ]


def test_an_unknown_deanery_alert_says_what_to_fix_and_never_repeats_the_stored_code():
    now = dt.datetime(2021, 7, 31, 15, 0, tzinfo=UTC)
    findings = classify([record(1, "Dr Jane Example", 42)], now, POLICY)
    findings += classify_notifications([notification(30, "Dr Jane Example", 43)], now, POLICY)

    announcements, memory = plan_announcements(findings, {}, now, UI, POLICY)
    cleared, _ = plan_announcements([], memory, now, UI, POLICY)

    texts = [a.text for a in announcements + cleared]
    assert all("Jane" not in text for text in texts)
    applicants, notifications = (a.text.splitlines() for a in announcements)
    assert applicants[0] == (
        "ESR export alert: 1 applicant record(s) due for export have a deanery that is not an ESR deanery code, "
        "so no export will ever send them."
    )
    assert applicants[2] == "Placement ids: 42."
    assert notifications[2] == "Notification ids: 43."
    assert all(line.startswith("What to do: Correct the") for line in (applicants[-1], notifications[-1]))
    assert [a.text for a in cleared] == [
        "ESR export resolved: no notification with an unknown deanery is waiting any more.",
        "ESR export resolved: no applicant record with an unknown deanery is waiting any more.",
    ]
