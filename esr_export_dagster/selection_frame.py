"""The record selection as a DataFrame: ids and scheduling fields only, so it is safe to persist.

Dagster's IO manager stores it between the two assets; the export op turns it back into the exporter's
``Selection`` together with the counter state it was read at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from .storage.exporter import Selection
from .storage.ledger import CounterState
from .storage.selection import SelectedRecord

COLUMNS = (
    "record_id",
    "reference",
    "deanery",
    "deanery_post_number",
    "anchor_date",
    "run_date",
    "invalid_fields",
    "conflict",
    "counter_id",
    "counter_exists",
    "counter_version",
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
            "counter_id": selection.read_at.counter_id,
            "counter_exists": selection.read_at.exists,
            "counter_version": selection.read_at.version,
        }
        for selection in selections
        for record in selection.records
    ]
    # Built as objects, then typed: with one reference missing, pandas would infer float64 for the column,
    # which cannot hold every 64-bit id exactly; nullable Int64 can.
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    return frame.astype({"reference": "Int64", "counter_exists": bool})


def partition_keys_of(frame: pd.DataFrame) -> pd.Series:
    """The (run date, deanery) partition of each selected record, as Dagster spells its key."""
    return frame["run_date"].map(lambda day: day.isoformat()) + "|" + frame["deanery"]


def selections_from_frame(frame: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, Selection]:
    """Per deanery; a deanery with no rows is absent and will simply be selected afresh.

    A run over many partitions receives one table per partition; they are read as one.
    """
    if isinstance(frame, Mapping):
        parts = [part for part in frame.values() if not part.empty]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(COLUMNS))
    selections: dict[str, Selection] = {}
    for deanery, rows in frame.groupby("deanery", sort=True):
        first = rows.iloc[0]
        version = first["counter_version"]
        read_at = CounterState(
            counter_id=str(first["counter_id"]),
            exists=bool(first["counter_exists"]),
            seq=0,
            version=None if version is None or pd.isna(version) else int(version),
            open_batch=None,
        )
        # Whole columns at once: a day's selection holds thousands of rows per deanery.
        records = tuple(
            SelectedRecord(
                record_id=record_id,
                reference=None if no_reference else int(reference),
                post_number=None if no_post_number else str(post_number),
                anchor_date=None if anchor_date is None or pd.isna(anchor_date) else anchor_date,
                run_date=run_date,
                invalid_fields=tuple(name for name in str(invalid_fields).split(",") if name),
                conflict=str(conflict or ""),
            )
            for record_id, reference, no_reference, post_number, no_post_number, anchor_date, run_date, invalid_fields, conflict in zip(
                rows["record_id"].tolist(),
                rows["reference"].tolist(),
                rows["reference"].isna().tolist(),
                rows["deanery_post_number"].tolist(),
                rows["deanery_post_number"].isna().tolist(),
                rows["anchor_date"].tolist(),
                rows["run_date"].tolist(),
                rows["invalid_fields"].tolist(),
                rows["conflict"].tolist(),
                strict=True,
            )
        )
        selections[str(deanery)] = Selection(str(deanery), read_at, records)
    return selections
