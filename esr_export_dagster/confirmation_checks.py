"""``esr_confirmed_every_file``: the asset check that fails while a partition's delivered file has had no
confirmation from ESR for longer than ESR_CONFIRMATION_DEADLINE_HOURS."""

import datetime as dt

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from .assets import app_export_file, notification_export_file
from .delivery_resource import DeliveryResource
from .domain.confirmation_file import LAYOUT_ANSWERING
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM, ExportStream
from .partitions import export_partitions, run_dates_by_deanery
from .resources import MongoDBResource
from .storage.ledger import ESR_CONFIRMATIONS, ExportLedger


def build_confirmation_check(stream: ExportStream, export_file: AssetsDefinition) -> AssetChecksDefinition:
    confirmation = LAYOUT_ANSWERING[stream.file_type].file_type

    @asset_check(
        asset=export_file,
        name="esr_confirmed_every_file",
        partitions_def=export_partitions,
        description=(
            f"Every {stream.file_type} file of the partition in ESR's drop has been answered by ESR with a "
            f"{confirmation} file within ESR_CONFIRMATION_DEADLINE_HOURS of its delivery. Fails while one is "
            "outstanding: ESR may not have loaded it."
        ),
    )
    def esr_confirmed_every_file(
        context: AssetCheckExecutionContext, mongodb: MongoDBResource, delivery: DeliveryResource
    ) -> AssetCheckResult:
        ledger = ExportLedger(mongodb.get_database(), stream.file_type)
        deadline = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
            hours=delivery.confirmation_deadline_hours
        )
        confirmed, awaiting, overdue = [], [], []
        for deanery, dates in run_dates_by_deanery(context).items():
            for run_date in dates:
                for entry in ledger.files_for(deanery, run_date):
                    name = str(entry["_id"])
                    if entry.get(ESR_CONFIRMATIONS):
                        confirmed.append(
                            {
                                "name": name,
                                "confirmations": sorted(c["file"] for c in entry[ESR_CONFIRMATIONS].values()),
                            }
                        )
                    elif not entry.get("delivered"):
                        continue  # every_file_delivered covers files not in ESR's drop
                    elif isinstance(entry.get("deliveredAt"), dt.datetime) and entry["deliveredAt"] < deadline:
                        overdue.append(name)
                    else:
                        awaiting.append(name)
        return AssetCheckResult(
            passed=not overdue,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "confirmed": MetadataValue.json(confirmed),
                "awaiting_confirmation": ", ".join(awaiting) or "none",
                "unconfirmed_past_deadline": ", ".join(overdue) or "none",
                "unconfirmed_past_deadline_count": len(overdue),
            },
        )

    return esr_confirmed_every_file


CONFIRMATION_CHECKS = [
    build_confirmation_check(APP_STREAM, app_export_file),
    build_confirmation_check(NOTIFICATION_STREAM, notification_export_file),
]
