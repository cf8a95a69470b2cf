"""``every_file_delivered``: the asset check that fails while a partition's written file is not in ESR's drop."""

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import partial

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue
from pymongo.database import Database

from .checks import ExportFileCheck, RunDates, export_file_check_spec
from .domain.streams import ExportStream
from .resources import MongoDBResource
from .storage.ledger import ExportLedger

EVERY_FILE_DELIVERED = "every_file_delivered"


def every_file_delivered(stream: ExportStream, run_dates: RunDates, *, mongodb: MongoDBResource) -> AssetCheckResult:
    delivered, undelivered = partition_deliveries(mongodb.get_database(), stream, run_dates)
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=EVERY_FILE_DELIVERED,
        passed=not undelivered,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "delivered": MetadataValue.json(delivered),
            "undelivered": MetadataValue.json(undelivered),
            "undelivered_count": len(undelivered),
        },
    )


def delivery_check(stream: ExportStream) -> ExportFileCheck:
    description = (
        f"Every {stream.file_type} file written for the partition is in ESR's drop, as the file ledger records "
        "(destination, key or path, SHA-256). Until then ESR has not received it, whatever the records say."
    )
    return ExportFileCheck(
        export_file_check_spec(stream, EVERY_FILE_DELIVERED, description), partial(every_file_delivered, stream)
    )


def partition_deliveries(
    database: Database, stream: ExportStream, run_dates: Mapping[str, Sequence[dt.date]]
) -> tuple[list[dict], list[str]]:
    """The partitions' files as the ledger knows them: delivered (with destination, location, SHA-256), and
    the names of those written but not delivered yet."""
    ledger = ExportLedger(database, stream.file_type)
    delivered, undelivered = [], []
    for deanery, dates in run_dates.items():
        for run_date in dates:
            for file in ledger.deliveries_for(deanery, run_date):
                if file.undelivered:
                    undelivered.append(file.name)
                elif file.delivered:
                    delivered.append(
                        {
                            "name": file.name,
                            "destination": file.destination,
                            "location": file.location,
                            "sha256": file.sha256,
                        }
                    )
    return delivered, undelivered
