"""``esr_confirmed_every_file``: the asset check that fails while a partition's delivered file has had no
confirmation from ESR for longer than ESR_CONFIRMATION_DEADLINE_HOURS.

It runs with every export run of the partition, and ``esr_confirmation_alert_sensor`` reports it again for a
partition when one of its files passes the deadline unanswered or is answered after it: the check's state
in the UI follows ESR's answers between runs.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import partial

from dagster import AssetCheckEvaluation, AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue
from pymongo.database import Database

from .checks import ExportFileCheck, RunDates, export_file_check_spec
from .delivery_resource import DeliveryResource
from .domain.confirmation_file import LAYOUT_ANSWERING
from .domain.esr_csv import parse_export_file_name
from .domain.streams import STREAMS, ExportStream
from .partitions import export_partition_key
from .resources import MongoDBResource
from .storage.ledger import ESR_CONFIRMATIONS, ExportLedger

CHECK_NAME = "esr_confirmed_every_file"


def partition_confirmations(
    database: Database, stream: ExportStream, run_dates: Mapping[str, Sequence[dt.date]], deadline: dt.datetime
) -> dict[str, list]:
    """The partitions' delivered files: confirmed (with their confirmations), awaiting an answer, and
    unanswered past ``deadline`` (naive UTC: delivered before it)."""
    ledger = ExportLedger(database, stream.file_type)
    found: dict[str, list] = {"confirmed": [], "awaiting": [], "overdue": []}
    for deanery, dates in run_dates.items():
        for run_date in dates:
            for entry in ledger.files_for(deanery, run_date):
                name = str(entry["_id"])
                if entry.get(ESR_CONFIRMATIONS):
                    found["confirmed"].append(
                        {"name": name, "confirmations": sorted(c["file"] for c in entry[ESR_CONFIRMATIONS].values())}
                    )
                elif not entry.get("delivered"):
                    continue  # every_file_delivered covers files not in ESR's drop
                elif isinstance(entry.get("deliveredAt"), dt.datetime) and entry["deliveredAt"] < deadline:
                    found["overdue"].append(name)
                else:
                    found["awaiting"].append(name)
    return found


def _metadata(found: dict[str, list]) -> dict:
    return {
        "confirmed": MetadataValue.json(found["confirmed"]),
        "awaiting_confirmation": ", ".join(found["awaiting"]) or "none",
        "unconfirmed_past_deadline": ", ".join(found["overdue"]) or "none",
        "unconfirmed_past_deadline_count": len(found["overdue"]),
    }


def confirmation_deadline(delivery: DeliveryResource, now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=delivery.confirmation_deadline_hours)


def evaluations_for_files(
    database: Database, file_names: Sequence[str], deadline: dt.datetime
) -> list[AssetCheckEvaluation]:
    """The check, evaluated again for the partitions of ``file_names`` (export file names)."""
    partitions = set()
    for name in file_names:
        try:
            parsed = parse_export_file_name(name)
        except ValueError:
            continue
        partitions.add((parsed.file_type, parsed.run_date, parsed.deanery))
    evaluations = []
    for file_type, run_date, deanery in sorted(partitions):
        (stream,) = [s for s in STREAMS if s.file_type == file_type]
        found = partition_confirmations(database, stream, {deanery: [run_date]}, deadline)
        evaluations.append(
            AssetCheckEvaluation(
                asset_key=AssetKey(stream.file_asset_name),
                check_name=CHECK_NAME,
                passed=not found["overdue"],
                severity=AssetCheckSeverity.ERROR,
                partition=str(export_partition_key(run_date, deanery)),
                metadata=_metadata(found),
            )
        )
    return evaluations


def esr_confirmed_every_file(
    stream: ExportStream, run_dates: RunDates, *, mongodb: MongoDBResource, delivery: DeliveryResource
) -> AssetCheckResult:
    deadline = confirmation_deadline(delivery, dt.datetime.now(dt.UTC))
    found = partition_confirmations(mongodb.get_database(), stream, run_dates, deadline)
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=CHECK_NAME,
        passed=not found["overdue"],
        severity=AssetCheckSeverity.ERROR,
        metadata=_metadata(found),
    )


def confirmation_check(stream: ExportStream) -> ExportFileCheck:
    confirmation = LAYOUT_ANSWERING[stream.file_type].file_type
    description = (
        f"Every {stream.file_type} file of the partition in ESR's drop has been answered by ESR with a "
        f"{confirmation} file within ESR_CONFIRMATION_DEADLINE_HOURS of its delivery. Fails while one is "
        "outstanding: ESR may not have loaded it."
    )
    return ExportFileCheck(
        export_file_check_spec(stream, CHECK_NAME, description), partial(esr_confirmed_every_file, stream)
    )
