"""How the eligible records of a deanery are cut into files.

ESR quarantines a whole APP file when it holds more than 40 applicants for one post (esr-interface.md
§4.4), so a day's records are dealt into as many files as the busiest post needs: file k takes the k-th
block of each post's records, earliest start first. Notifications have no such limit: one file a day. The order is fully determined by the data, so a file re-planned
or re-rendered after a crash comes out the same.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ESR_MAX_APPLICANTS_PER_POST = 40


@dataclass(frozen=True)
class PlannedRecord:
    record_id: Hashable
    # The business id (placementId, notificationId) and the date eligibility is judged from (start date,
    # creation date): with the post, they fix a line's place in its file.
    reference: int
    post_number: str
    anchor_date: dt.date
    run_date: dt.date

    @property
    def line_order(self) -> tuple[Any, ...]:
        return (self.post_number, self.anchor_date, self.reference, str(self.record_id))


@dataclass(frozen=True)
class PlannedFile:
    run_date: dt.date
    record_ids: tuple[Hashable, ...]
    largest_post_count: int


def plan_files(
    records: Iterable[PlannedRecord],
    max_per_post: int | None = ESR_MAX_APPLICANTS_PER_POST,
) -> list[PlannedFile]:
    """Files in numbering order: run dates ascending, then the split files of each date.

    ``max_per_post=None``: no per-post limit, one file per run date.
    """
    if max_per_post is not None and max_per_post < 1:
        raise ValueError("max_per_post must be at least 1")
    by_date: dict[dt.date, list[PlannedRecord]] = defaultdict(list)
    for record in records:
        by_date[record.run_date].append(record)
    files: list[PlannedFile] = []
    for run_date in sorted(by_date):
        files.extend(_split_by_post(run_date, by_date[run_date], max_per_post))
    return files


def _split_by_post(run_date: dt.date, records: Sequence[PlannedRecord], max_per_post: int | None) -> list[PlannedFile]:
    by_post: dict[str, list[PlannedRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.line_order):
        by_post[record.post_number].append(record)
    if max_per_post is None:
        max_per_post = max((len(rs) for rs in by_post.values()), default=1)
    file_count = max((-(-len(rs) // max_per_post) for rs in by_post.values()), default=0)
    files = []
    for index in range(file_count):
        block = [
            record
            for post_records in by_post.values()
            for record in post_records[index * max_per_post : (index + 1) * max_per_post]
        ]
        block.sort(key=lambda r: r.line_order)
        per_post: dict[str, int] = defaultdict(int)
        for record in block:
            per_post[record.post_number] += 1
        files.append(
            PlannedFile(
                run_date=run_date,
                record_ids=tuple(r.record_id for r in block),
                largest_post_count=max(per_post.values()),
            )
        )
    return files
