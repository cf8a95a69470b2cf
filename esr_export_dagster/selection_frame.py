"""The record selection as a DataFrame, for the selection asset's metadata: ids and scheduling fields only.

Each partition's materialization shows its counts and a preview built from this frame, so it must carry
no personal data. Nothing is stored from it: the file asset reads the records again as it plans.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from .storage.exporter import Selection

COLUMNS = (
    "record_id",
    "reference",
    "deanery",
    "deanery_post_number",
    "anchor_date",
    "run_date",
    "invalid_fields",
    "conflict",
)


def selections_to_frame(selections: Iterable[Selection]) -> pd.DataFrame:
    rows = [
        {
            "record_id": record.record_id,
            "reference": record.reference,
            "deanery": selection.deanery,
            "deanery_post_number": record.post_number,
            "anchor_date": record.anchor_date,
            "run_date": record.run_date,
            "invalid_fields": ",".join(record.invalid_fields),
            "conflict": record.conflict,
        }
        for selection in selections
        for record in selection.records
    ]
    # Built as objects, then typed: with one reference missing, pandas would infer float64 for the column,
    # which cannot hold every 64-bit id exactly; nullable Int64 can.
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    return frame.astype({"reference": "Int64"})


def partition_keys_of(frame: pd.DataFrame) -> pd.Series:
    """The (run date, deanery) partition of each selected record, as Dagster spells its key."""
    return frame["run_date"].map(lambda day: day.isoformat()) + "|" + frame["deanery"]
