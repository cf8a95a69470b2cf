"""``every_file_delivered``: the asset check that fails while a partition's written file is not in ESR's drop."""

import datetime as dt
from collections.abc import Mapping, Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)
from pymongo.database import Database

from .domain.streams import ExportStream
from .partitions import export_partitions, run_dates_by_deanery
from .resources import MongoDBResource
from .storage.ledger import ExportLedger


def build_delivery_check(stream: ExportStream, export_file: AssetsDefinition) -> AssetChecksDefinition:
    @asset_check(
        asset=export_file,
        name="every_file_delivered",
        partitions_def=export_partitions,
        description=(
            f"Every {stream.file_type} file written for the partition is in ESR's drop, as the file ledger records "
            "(destination, key or path, SHA-256). Until then ESR has not received it, whatever the records say."
        ),
    )
    def every_file_delivered(context: AssetCheckExecutionContext, mongodb: MongoDBResource) -> AssetCheckResult:
        delivered, undelivered = partition_deliveries(mongodb.get_database(), stream, run_dates_by_deanery(context))
        return AssetCheckResult(
            passed=not undelivered,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "delivered": MetadataValue.json(delivered),
                "undelivered": MetadataValue.json(undelivered),
                "undelivered_count": len(undelivered),
            },
        )

    return every_file_delivered


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
