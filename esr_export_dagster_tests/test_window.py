"""Eligibility on its own: which start dates (APP) and creation times (DNC) a run for date D exports (no MongoDB, no Dagster)."""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.domain.window import CreatedBeforeExportTime, EligibilityWindow, within_anchor_range

RUN_DATE = dt.date(2021, 7, 31)
DAY = dt.timedelta(days=1)
THIRTEEN_WEEKS = dt.timedelta(weeks=13)
WINDOW = EligibilityWindow()


def _at(day: dt.date, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second))


def _brute_force_first_run_date(window, start, run_dates):
    return next((day for day in run_dates if window.is_eligible(start, day)), None)


# --- the bounds ------------------------------------------------------------------------------------------


def test_the_default_window_is_two_days_to_thirteen_weeks():
    assert WINDOW.earliest_start_offset_days == 2
    assert WINDOW.latest_start_offset_weeks == 13
    assert WINDOW.lower == dt.timedelta(days=2)
    assert WINDOW.upper == dt.timedelta(weeks=13)


def test_a_start_two_days_after_the_run_date_is_eligible():
    assert WINDOW.is_eligible(RUN_DATE + 2 * DAY, RUN_DATE)


def test_a_start_one_day_after_the_run_date_is_too_late_for_the_window():
    assert not WINDOW.is_eligible(RUN_DATE + DAY, RUN_DATE)
    assert not WINDOW.is_eligible(RUN_DATE, RUN_DATE)
    assert not WINDOW.is_eligible(RUN_DATE - DAY, RUN_DATE)


def test_a_start_exactly_thirteen_weeks_ahead_is_not_yet_eligible():
    assert not WINDOW.is_eligible(RUN_DATE + THIRTEEN_WEEKS, RUN_DATE)
    assert not WINDOW.is_eligible(RUN_DATE + THIRTEEN_WEEKS + DAY, RUN_DATE)


def test_a_start_one_day_short_of_thirteen_weeks_is_eligible():
    assert WINDOW.is_eligible(RUN_DATE + THIRTEEN_WEEKS - DAY, RUN_DATE)


def test_every_day_inside_the_window_is_eligible_and_none_outside():
    eligible = [offset for offset in range(-5, 13 * 7 + 5) if WINDOW.is_eligible(RUN_DATE + offset * DAY, RUN_DATE)]

    assert eligible == list(range(2, 13 * 7))


def test_datetime_starts_are_judged_by_their_day_whatever_the_time():
    assert WINDOW.is_eligible(_at(RUN_DATE + 2 * DAY), RUN_DATE)
    assert WINDOW.is_eligible(_at(RUN_DATE + 2 * DAY, 23, 59, 59), RUN_DATE)
    assert not WINDOW.is_eligible(_at(RUN_DATE + DAY, 23, 59, 59), RUN_DATE)
    assert WINDOW.is_eligible(_at(RUN_DATE + THIRTEEN_WEEKS - DAY, 23, 59, 59), RUN_DATE)
    assert not WINDOW.is_eligible(_at(RUN_DATE + THIRTEEN_WEEKS), RUN_DATE)


def test_a_custom_window_moves_both_bounds():
    window = EligibilityWindow(earliest_start_offset_days=0, latest_start_offset_weeks=1)

    assert window.is_eligible(RUN_DATE, RUN_DATE)
    assert window.is_eligible(RUN_DATE + 6 * DAY, RUN_DATE)
    assert not window.is_eligible(RUN_DATE + 7 * DAY, RUN_DATE)
    assert not window.is_eligible(RUN_DATE - DAY, RUN_DATE)


# --- start_date_range ------------------------------------------------------------------------------------


def test_the_start_date_range_of_one_day_is_its_window_as_midnights():
    assert WINDOW.start_date_range(RUN_DATE, RUN_DATE) == (
        dt.datetime(2021, 8, 2),
        dt.datetime(2021, 10, 30),
    )


def test_the_start_date_range_of_a_span_runs_from_the_first_days_lower_bound_to_the_last_days_upper_bound():
    first, last = RUN_DATE, RUN_DATE + 10 * DAY

    start_from, start_to = WINDOW.start_date_range(first, last)

    assert start_from == _at(first + 2 * DAY)
    assert start_to == _at(last + THIRTEEN_WEEKS)
    assert type(start_from) is dt.datetime and type(start_to) is dt.datetime


def test_the_start_date_range_holds_exactly_the_starts_eligible_on_some_day_of_the_span():
    span = [RUN_DATE + offset * DAY for offset in range(5)]
    start_from, start_to = WINDOW.start_date_range(span[0], span[-1])

    for offset in range(-3, 13 * 7 + 10):
        start = _at(RUN_DATE + offset * DAY, 12)
        in_range = start_from <= start < start_to
        assert in_range == any(WINDOW.is_eligible(start, day) for day in span), offset


# --- first_run_date --------------------------------------------------------------------------------------


def test_a_record_goes_to_the_first_run_date_whose_window_holds_it():
    run_dates = [RUN_DATE, RUN_DATE + DAY, RUN_DATE + 7 * DAY]

    assert WINDOW.first_run_date(RUN_DATE + 2 * DAY, run_dates) == RUN_DATE
    assert WINDOW.first_run_date(RUN_DATE + 20 * DAY, run_dates) == RUN_DATE
    # Thirteen weeks after the first day: that day's upper bound is exclusive, so the second day takes it.
    assert WINDOW.first_run_date(RUN_DATE + THIRTEEN_WEEKS, run_dates) == RUN_DATE + DAY
    assert WINDOW.first_run_date(RUN_DATE + THIRTEEN_WEEKS + 2 * DAY, run_dates) == RUN_DATE + 7 * DAY
    # The last start the final day still holds.
    assert WINDOW.first_run_date(RUN_DATE + 7 * DAY + THIRTEEN_WEEKS - DAY, run_dates) == RUN_DATE + 7 * DAY


def test_a_record_no_run_date_holds_has_no_first_run_date():
    run_dates = [RUN_DATE, RUN_DATE + DAY, RUN_DATE + 7 * DAY]

    assert WINDOW.first_run_date(RUN_DATE + DAY, run_dates) is None  # too late even for the first day
    assert WINDOW.first_run_date(RUN_DATE - 3 * DAY, run_dates) is None  # already started
    assert WINDOW.first_run_date(RUN_DATE + 7 * DAY + THIRTEEN_WEEKS, run_dates) is None  # too early for all
    assert WINDOW.first_run_date(RUN_DATE + 10 * DAY, []) is None


def test_a_record_whose_window_falls_between_two_run_dates_has_no_first_run_date():
    run_dates = [RUN_DATE, RUN_DATE + 100 * DAY]
    start = RUN_DATE + 92 * DAY  # eligible only on RUN_DATE+2 .. RUN_DATE+90

    assert WINDOW.first_run_date(start, run_dates) is None
    assert WINDOW.first_run_date(start, [RUN_DATE + 2 * DAY, RUN_DATE + 100 * DAY]) == RUN_DATE + 2 * DAY
    assert WINDOW.first_run_date(start, [RUN_DATE + DAY, RUN_DATE + 90 * DAY]) == RUN_DATE + 90 * DAY


def test_first_run_date_agrees_with_running_the_days_one_by_one():
    run_dates = [RUN_DATE + offset * DAY for offset in (0, 1, 2, 5, 6, 20, 60, 61)]

    for offset in range(-5, 61 + 13 * 7 + 5):
        start = RUN_DATE + offset * DAY
        assert WINDOW.first_run_date(start, run_dates) == _brute_force_first_run_date(WINDOW, start, run_dates), offset


def test_first_run_date_takes_datetime_and_date_starts_alike():
    run_dates = [RUN_DATE, RUN_DATE + DAY, RUN_DATE + 7 * DAY]

    for offset in (1, 2, 50, 13 * 7, 13 * 7 + 1, 13 * 7 + 7, 13 * 7 + 8):
        day = RUN_DATE + offset * DAY
        by_date = WINDOW.first_run_date(day, run_dates)
        assert WINDOW.first_run_date(_at(day), run_dates) == by_date, offset
        assert WINDOW.first_run_date(_at(day, 23, 59, 59), run_dates) == by_date, offset


# --- last_run_date_holding -------------------------------------------------------------------------------


def test_the_last_run_date_holding_a_start_is_two_days_before_it():
    start = RUN_DATE + 30 * DAY

    last = WINDOW.last_run_date_holding(start)

    assert last == RUN_DATE + 28 * DAY
    assert WINDOW.is_eligible(start, last)
    assert not WINDOW.is_eligible(start, last + DAY)


def test_the_last_run_date_holding_a_datetime_start_is_a_date():
    last = WINDOW.last_run_date_holding(_at(RUN_DATE + 30 * DAY, 9, 30))

    assert last == RUN_DATE + 28 * DAY
    assert type(last) is dt.date


def test_the_last_run_date_holding_follows_a_custom_lower_bound():
    window = EligibilityWindow(earliest_start_offset_days=5, latest_start_offset_weeks=13)

    assert window.last_run_date_holding(RUN_DATE) == RUN_DATE - 5 * DAY


# --- configuration ---------------------------------------------------------------------------------------


def test_a_negative_earliest_offset_is_refused():
    with pytest.raises(ValueError, match="earliest_start_offset_days must not be negative"):
        EligibilityWindow(earliest_start_offset_days=-1)


@pytest.mark.parametrize(
    ("days", "weeks"),
    [(0, 0), (14, 2), (15, 2), (2, 0), (2, -1), (91, 13)],
)
def test_an_empty_window_is_refused(days, weeks):
    with pytest.raises(ValueError, match="the window would be empty"):
        EligibilityWindow(earliest_start_offset_days=days, latest_start_offset_weeks=weeks)


def test_a_window_one_day_wide_is_allowed():
    window = EligibilityWindow(earliest_start_offset_days=13, latest_start_offset_weeks=2)

    assert [o for o in range(0, 20) if window.is_eligible(RUN_DATE + o * DAY, RUN_DATE)] == [13]


def test_the_window_describes_itself():
    assert WINDOW.describe() == "D + 2 days <= startDate < D + 13 weeks"
    assert EligibilityWindow(0, 4).describe() == "D + 0 days <= startDate < D + 4 weeks"


# --- notifications: created before the day's export time ------------------------------------------------

CUTOFF = CreatedBeforeExportTime()


def test_a_notification_goes_in_the_file_of_the_first_export_after_its_creation():
    run_dates = [RUN_DATE + n * DAY for n in range(5)]

    assert CUTOFF.first_run_date(dt.datetime.combine(RUN_DATE, dt.time(13, 59, 59)), run_dates) == RUN_DATE
    assert CUTOFF.first_run_date(dt.datetime.combine(RUN_DATE, dt.time(14, 0)), run_dates) == RUN_DATE + DAY
    assert CUTOFF.first_run_date(dt.datetime.combine(RUN_DATE - 9 * DAY, dt.time(8)), run_dates) == RUN_DATE
    assert CUTOFF.first_run_date(dt.datetime.combine(RUN_DATE + 4 * DAY, dt.time(15)), run_dates) is None


def test_notification_first_run_date_agrees_with_running_the_days_one_by_one():
    run_dates = [RUN_DATE + n * DAY for n in (0, 1, 3, 4, 9)]
    for hours in range(-48, 12 * 24, 5):
        created = dt.datetime.combine(RUN_DATE, dt.time.min) + dt.timedelta(hours=hours, minutes=17)
        one_by_one = next((day for day in run_dates if CUTOFF.is_eligible(created, day)), None)
        assert CUTOFF.first_run_date(created, run_dates) == one_by_one, created


def test_the_notification_anchor_range_has_no_lower_bound_and_ends_at_the_last_days_export_time():
    assert CUTOFF.anchor_range(RUN_DATE, RUN_DATE + 30 * DAY) == (
        None,
        dt.datetime.combine(RUN_DATE + 30 * DAY, dt.time(14, 0)),
    )
    assert CreatedBeforeExportTime(dt.time(16, 30)).describe() == "createdDate < D 16:30 UTC"


def test_an_aware_creation_time_is_judged_in_utc():
    bst = dt.timezone(dt.timedelta(hours=1))
    created = dt.datetime.combine(RUN_DATE, dt.time(14, 30), tzinfo=bst)  # 13:30 UTC

    assert CUTOFF.is_eligible(created, RUN_DATE)


def test_a_stored_anchor_is_within_its_range_from_the_first_instant_up_to_but_not_including_the_end():
    start, end = dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 8)
    assert within_anchor_range(start, start, end)
    assert not within_anchor_range(start - dt.timedelta(microseconds=1), start, end)
    assert not within_anchor_range(end, start, end)
    assert within_anchor_range(dt.datetime(1990, 1, 1), None, end)
    # MongoDB hands back naive UTC; an aware value is judged at the same instant.
    assert within_anchor_range(dt.datetime(2026, 12, 8, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), start, end)
    for not_a_datetime in (None, "2026-12-02", dt.date(2026, 12, 2), 20261202):
        assert not within_anchor_range(not_a_datetime, start, end)
