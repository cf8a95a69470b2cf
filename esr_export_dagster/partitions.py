"""Partitions of the export: one per (run date, deanery), so one deanery's failure never blocks another."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping

from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    OpExecutionContext,
    StaticPartitionsDefinition,
)

from .domain.deaneries import DEANERIES, require_deanery
from .settings import FIRST_PARTITION_DATE

DATE_DIMENSION = "date"
DEANERY_DIMENSION = "deanery"
DEFAULT_FIRST_PARTITION_DATE = FIRST_PARTITION_DATE.default
FIRST_PARTITION_DATE_VARIABLE = FIRST_PARTITION_DATE.name


def first_partition_date(environ: Mapping[str, str | None]) -> str:
    """The grid's first date, from ESR_FIRST_PARTITION_DATE (default 2021-07-01): the only place it is checked."""
    value = (environ.get(FIRST_PARTITION_DATE_VARIABLE) or "").strip() or DEFAULT_FIRST_PARTITION_DATE
    try:
        first = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{FIRST_PARTITION_DATE_VARIABLE} must be a date written YYYY-MM-DD, such as {DEFAULT_FIRST_PARTITION_DATE}"
        ) from None
    if first > dt.datetime.now(dt.UTC).date():
        raise ValueError(f"{FIRST_PARTITION_DATE_VARIABLE} must not lie in the future: the grid would be empty")
    return first.isoformat()


# Read when the code location loads: the partitions are part of the definitions (settings.py).
FIRST_EXPORT_DATE = first_partition_date({FIRST_PARTITION_DATE.name: FIRST_PARTITION_DATE.load_value()})
DEANERY_TAG = "esr/deanery"
# The tag Dagster itself puts on a run of one date × deanery partition (a one-partition Materialize in the UI,
# and the schedule's and sensor's runs beside DEANERY_TAG). A range run of a backfill carries neither.
PARTITION_DEANERY_TAG = f"dagster/partition/{DEANERY_DIMENSION}"
# The instance's run queue holds to one run at a time per value of each of these tags.
DEANERY_LIMITED_TAGS = (DEANERY_TAG, PARTITION_DEANERY_TAG)

export_partitions = MultiPartitionsDefinition(
    {
        # end_offset=1: today's partition exists from midnight, so the 13:00 run can target it.
        DATE_DIMENSION: DailyPartitionsDefinition(start_date=FIRST_EXPORT_DATE, end_offset=1, timezone="UTC"),
        DEANERY_DIMENSION: StaticPartitionsDefinition(list(DEANERIES)),
    }
)


def export_partition_key(run_date: dt.date, deanery: str) -> MultiPartitionKey:
    return MultiPartitionKey({DATE_DIMENSION: run_date.isoformat(), DEANERY_DIMENSION: require_deanery(deanery)})


def run_dates_by_deanery(context: OpExecutionContext | AssetExecutionContext) -> dict[str, list[dt.date]]:
    """The run's partitions as deanery -> run dates (ascending); a range run may hold many of each."""
    by_deanery: dict[str, list[dt.date]] = defaultdict(list)
    for key in context.partition_keys:
        dimensions = export_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        deanery = require_deanery(dimensions[DEANERY_DIMENSION])
        by_deanery[deanery].append(dt.date.fromisoformat(dimensions[DATE_DIMENSION]))
    return {deanery: sorted(set(dates)) for deanery, dates in sorted(by_deanery.items())}
