"""What the asset checks read from the record collections, and the little they remember between runs.

Every read here costs what the partition holds (a file's records, the INVALID_DATA few), never what the
collection has accumulated over the years: the checks run after every materialization.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pymongo.database import Database

from ..domain.records import EXPORTED, INVALID_DATA
from ..domain.streams import ExportStream
from .collections import CHECK_STATE


def references_marked_with(database: Database, stream: ExportStream, name: str) -> list[int]:
    """Business ids (placementId, notificationId) of the records marked EXPORTED with the file's name.

    An equality on ``exportedFileName`` alone, served by its index, grouped by status on the server so that
    only the ids come back. The status is a group key, not part of the filter, since it would let a server
    pick the status index, which holds the whole EXPORTED history. Measured on the local stand-in at
    250,000 and 1,000,000 stored records (docs/performance.md, benchmarks/check_cost.py): ``distinct``
    scans the whole collection for every file (1.0 s and 3.0 s per file); ``find`` is served by the index
    but decodes every whole record (about 0.15 ms each, so a 7,700-record file costs over a second); this
    costs 40 ms and 140 ms per file, nearly all of it a ``COUNT`` of the collection that the stand-in's
    aggregation cursor makes to size its result, a C-speed pass a real MongoDB does not make.
    """
    groups = database[stream.records_collection].aggregate(
        [
            {"$match": {"exportedFileName": name}},
            {"$group": {"_id": "$status", "references": {"$push": f"${stream.reference_field}"}}},
        ]
    )
    return [
        reference
        for group in groups
        if group["_id"] == EXPORTED
        for reference in group["references"]
        if reference is not None
    ]


def invalid_counts(database: Database, stream: ExportStream) -> Counter[str]:
    """INVALID_DATA records per deanery: an equality on status alone (indexed); they are few, so counted here."""
    return Counter(
        document.get("deanery")
        for document in database[stream.records_collection].find({"status": INVALID_DATA}, {"deanery": 1})
    )


class InvalidCountMemory:
    """The INVALID_DATA count each deanery had at the previous check of its export, kept in ``CHECK_STATE``."""

    def __init__(self, database: Database, stream: ExportStream) -> None:
        self._state = database[CHECK_STATE]
        self._stream = stream

    def previous(self, deaneries: Iterable[str]) -> dict[str, int | None]:
        """Per deanery, the count at the previous check; None if it was never checked."""
        return {
            deanery: (self._state.find_one({"_id": self._state_id(deanery)}) or {}).get("count")
            for deanery in deaneries
        }

    def record(self, counts: dict[str, int]) -> None:
        for deanery, count in counts.items():
            self._state.update_one({"_id": self._state_id(deanery)}, {"$set": {"count": count}}, upsert=True)

    def _state_id(self, deanery: str) -> str:
        # The layout of the earlier versions, so an upgrade compares against what they remembered.
        return f"{self._stream.counter_id(deanery)}_invalid"
