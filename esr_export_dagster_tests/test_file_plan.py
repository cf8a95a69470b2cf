"""How a deanery's eligible records are cut into files (no MongoDB, no Dagster)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter

import pytest

from esr_export_dagster.domain.file_plan import (
    ESR_MAX_APPLICANTS_PER_POST,
    PlannedFile,
    PlannedRecord,
    plan_files,
)

RUN_DATE = dt.date(2021, 7, 31)
DAY = dt.timedelta(days=1)


class Records:
    """Fictitious planned records with unique, increasing placement ids."""

    def __init__(self) -> None:
        self._next = 700_000
        self.by_id: dict[str, PlannedRecord] = {}

    def add(
        self,
        post: str,
        count: int = 1,
        *,
        start: dt.date | None = None,
        run_date: dt.date = RUN_DATE,
        placement_id: int | None = None,
    ) -> list[PlannedRecord]:
        made = []
        for index in range(count):
            self._next += 1
            record = PlannedRecord(
                record_id=f"rec-{self._next}",
                reference=placement_id if placement_id is not None else self._next,
                post_number=post,
                anchor_date=start or (run_date + (2 + index % 80) * DAY),
                run_date=run_date,
            )
            self.by_id[record.record_id] = record
            made.append(record)
        return made

    def all(self) -> list[PlannedRecord]:
        return list(self.by_id.values())

    def of(self, file: PlannedFile) -> list[PlannedRecord]:
        return [self.by_id[record_id] for record_id in file.record_ids]


def per_post(records: list[PlannedRecord]) -> Counter:
    return Counter(record.post_number for record in records)


def test_the_esr_limit_is_forty_applicants_per_post():
    assert ESR_MAX_APPLICANTS_PER_POST == 40


def test_nothing_to_plan_gives_no_files():
    assert plan_files([]) == []
    assert plan_files(iter(())) == []


def test_forty_applicants_for_one_post_fit_in_one_file():
    records = Records()
    records.add("EOE/RGT00/021/F1/003", 40)

    (file,) = plan_files(records.all())

    assert len(file.record_ids) == 40
    assert file.largest_post_count == 40
    assert file.run_date == RUN_DATE


def test_a_forty_first_applicant_for_one_post_opens_a_second_file():
    records = Records()
    records.add("EOE/RGT00/021/F1/003", 41)

    files = plan_files(records.all())

    assert [len(f.record_ids) for f in files] == [40, 1]
    assert [f.largest_post_count for f in files] == [40, 1]


def test_a_crowded_post_is_split_into_files_of_at_most_forty_for_each_post():
    records = Records()
    records.add("POST-A", 95)
    records.add("POST-B", 10)
    records.add("POST-C", 40)
    records.add("POST-D", 81)

    files = plan_files(records.all())

    assert len(files) == 3
    assert [per_post(records.of(f)) for f in files] == [
        Counter({"POST-A": 40, "POST-B": 10, "POST-C": 40, "POST-D": 40}),
        Counter({"POST-A": 40, "POST-D": 40}),
        Counter({"POST-A": 15, "POST-D": 1}),
    ]
    assert [f.largest_post_count for f in files] == [40, 40, 15]
    every_id = [record_id for f in files for record_id in f.record_ids]
    assert sorted(every_id) == sorted(records.by_id)  # each record in exactly one file


def test_the_largest_post_count_is_the_busiest_post_of_the_file():
    records = Records()
    records.add("POST-A", 3)
    records.add("POST-B", 7)
    records.add("POST-C", 1)

    (file,) = plan_files(records.all())

    assert file.largest_post_count == 7


def test_file_k_takes_the_kth_block_of_each_post_earliest_start_first():
    records = Records()
    # Added latest start first, so input order is the reverse of the expected order.
    crowded = [records.add("POST-A", start=RUN_DATE + (90 - i) * DAY)[0] for i in range(85)]
    quiet = [records.add("POST-B", start=RUN_DATE + (50 - i) * DAY)[0] for i in range(45)]

    files = plan_files(records.all())

    by_start = lambda rs: sorted(rs, key=lambda r: (r.anchor_date, r.reference))  # noqa: E731
    a, b = by_start(crowded), by_start(quiet)
    assert [set(records.of(f)) for f in files] == [
        set(a[:40]) | set(b[:40]),
        set(a[40:80]) | set(b[40:]),
        set(a[80:]),
    ]
    # No record of a later file starts before one of the same post in an earlier file.
    for earlier, later in itertools.pairwise(files):
        for post in ("POST-A", "POST-B"):
            earlier_starts = [r.anchor_date for r in records.of(earlier) if r.post_number == post]
            later_starts = [r.anchor_date for r in records.of(later) if r.post_number == post]
            if earlier_starts and later_starts:
                assert max(earlier_starts) <= min(later_starts)


def test_lines_are_sorted_by_post_then_start_then_placement():
    records = Records()
    records.add("POST-B", start=RUN_DATE + 9 * DAY, placement_id=30)
    records.add("POST-A", start=RUN_DATE + 9 * DAY, placement_id=10)
    records.add("POST-A", start=RUN_DATE + 3 * DAY, placement_id=99)
    records.add("POST-B", start=RUN_DATE + 3 * DAY, placement_id=50)
    records.add("POST-A", start=RUN_DATE + 9 * DAY, placement_id=5)
    records.add("POST-B", start=RUN_DATE + 3 * DAY, placement_id=40)

    (file,) = plan_files(records.all())

    assert [(r.post_number, (r.anchor_date - RUN_DATE).days, r.reference) for r in records.of(file)] == [
        ("POST-A", 3, 99),
        ("POST-A", 9, 5),
        ("POST-A", 9, 10),
        ("POST-B", 3, 40),
        ("POST-B", 3, 50),
        ("POST-B", 9, 30),
    ]


def test_every_split_file_keeps_its_lines_in_line_order():
    records = Records()
    records.add("POST-Z", 90)
    records.add("POST-M", 45)
    records.add("POST-A", 12)

    for file in plan_files(records.all()):
        lines = records.of(file)
        assert lines == sorted(lines, key=lambda r: (r.post_number, r.anchor_date, r.reference))


def test_several_run_dates_give_their_files_in_date_order():
    records = Records()
    later, earlier, middle = RUN_DATE + 2 * DAY, RUN_DATE, RUN_DATE + DAY
    records.add("POST-A", 3, run_date=later)
    records.add("POST-A", 45, run_date=earlier)
    records.add("POST-B", 2, run_date=middle)

    files = plan_files(records.all())

    assert [f.run_date for f in files] == [earlier, earlier, middle, later]
    for file in files:
        assert {records.by_id[i].run_date for i in file.record_ids} == {file.run_date}
    assert [len(f.record_ids) for f in files] == [40, 5, 2, 3]


def test_the_same_post_on_two_run_dates_is_counted_per_date():
    records = Records()
    records.add("POST-A", 30, run_date=RUN_DATE)
    records.add("POST-A", 30, run_date=RUN_DATE + DAY)

    files = plan_files(records.all())

    assert [(f.run_date, len(f.record_ids), f.largest_post_count) for f in files] == [
        (RUN_DATE, 30, 30),
        (RUN_DATE + DAY, 30, 30),
    ]


def test_the_plan_does_not_depend_on_the_order_records_arrive_in():
    records = Records()
    records.add("POST-A", 95, run_date=RUN_DATE)
    records.add("POST-B", 41, run_date=RUN_DATE)
    records.add("POST-C", 5, run_date=RUN_DATE + DAY)
    # Ties on post and start date, broken by placement id.
    records.add("POST-D", start=RUN_DATE + 4 * DAY, placement_id=3)
    records.add("POST-D", start=RUN_DATE + 4 * DAY, placement_id=1)
    records.add("POST-D", start=RUN_DATE + 4 * DAY, placement_id=2)
    expected = plan_files(records.all())

    shuffler = random.Random(20210731)
    for _ in range(25):
        shuffled = records.all()
        shuffler.shuffle(shuffled)
        assert plan_files(shuffled) == expected
    assert plan_files(reversed(records.all())) == expected


@pytest.mark.parametrize("max_per_post", [0, -1, -40])
def test_a_limit_below_one_per_post_is_refused(max_per_post):
    with pytest.raises(ValueError, match="max_per_post must be at least 1"):
        plan_files([], max_per_post=max_per_post)


def test_a_smaller_limit_splits_accordingly():
    records = Records()
    records.add("POST-A", 5)
    records.add("POST-B", 2)

    files = plan_files(records.all(), max_per_post=2)

    assert [per_post(records.of(f)) for f in files] == [
        Counter({"POST-A": 2, "POST-B": 2}),
        Counter({"POST-A": 2}),
        Counter({"POST-A": 1}),
    ]
    assert [f.largest_post_count for f in files] == [2, 2, 1]


def test_a_limit_of_one_puts_one_applicant_per_post_in_each_file():
    records = Records()
    records.add("POST-A", 3)
    records.add("POST-B", 3)

    files = plan_files(records.all(), max_per_post=1)

    assert len(files) == 3
    for file in files:
        assert per_post(records.of(file)) == Counter({"POST-A": 1, "POST-B": 1})
        assert file.largest_post_count == 1
