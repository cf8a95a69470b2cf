"""Asset checks on each stream's export file asset: every partition's export is verified against MongoDB
and the files."""

import datetime as dt
from collections import Counter

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from .assets import app_export_file, notification_export_file
from .domain.past_start import RUN_CONFIG_FLAG
from .domain.records import EXPORTED, INVALID_DATA
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM, ExportStream
from .partitions import export_partitions, run_dates_by_deanery
from .resources import (
    ExportDirectoryResource,
    ExportPolicyResource,
    MongoDBResource,
    WallClockResource,
    build_exporter,
)
from .storage.collections import COUNTER, EXPORT_FILE
from .storage.ledger import FILE_COMPLETE
from .storage.stale_query import pending_records

CHECK_STATE = "exportCheckState"
_SAMPLE = 10


# A backfill checks many partitions in one run: each check covers them all and fails if any fails.


@asset_check(
    asset=app_export_file,
    partitions_def=export_partitions,
    description=(
        "No applicant record of the deanery is still TO_EXPORT with its start date already reached (UTC). Runs "
        "withhold such records from the files (counted as withheld_past_start) so nobody is hired twice. What to "
        "do: tell the trust to hire by hand, then set the records' status in TIS; only if the trust confirms it "
        f"did not hire by hand, re-materialize the partition with run config {RUN_CONFIG_FLAG}: true."
    ),
)
def no_records_past_their_start_date(
    context: AssetCheckExecutionContext, mongodb: MongoDBResource, wall_clock: WallClockResource
) -> AssetCheckResult:
    database = mongodb.get_database()
    tomorrow = wall_clock.today() + dt.timedelta(days=1)
    stuck = sorted(
        (
            record
            for deanery in run_dates_by_deanery(context)
            for record in pending_records(database, starting_before=tomorrow, deanery=deanery)
        ),
        key=lambda r: (r.start_date, r.placement_id or 0),
    )
    return AssetCheckResult(
        passed=not stuck,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "records_past_start": len(stuck),
            "earliest_start": stuck[0].start_date.isoformat() if stuck else "none",
            "sample_placement_ids": MetadataValue.json([r.placement_id for r in stuck[:_SAMPLE]]),
        },
    )


def build_export_checks(stream: ExportStream, export_file: AssetsDefinition) -> list[AssetChecksDefinition]:
    """The checks every stream's export file asset carries: numbering, file contents, invalid records."""

    @asset_check(
        asset=export_file,
        partitions_def=export_partitions,
        description=f"The deanery's {stream.file_type} file numbers run without gap or repeat up to the counter.",
    )
    def sequence_numbers_are_contiguous(context: AssetCheckExecutionContext, mongodb: MongoDBResource) -> AssetCheckResult:
        database = mongodb.get_database()
        per_deanery = {deanery: _sequence_report(database, stream, deanery) for deanery in run_dates_by_deanery(context)}
        return AssetCheckResult(
            passed=all(report.pop("passed") for report in per_deanery.values()),
            severity=AssetCheckSeverity.ERROR,
            metadata={"by_deanery": MetadataValue.json(per_deanery)},
        )

    @asset_check(
        asset=export_file,
        partitions_def=export_partitions,
        description="Each file of the partition holds exactly the records marked EXPORTED with its name.",
    )
    def file_lines_match_exported_records(
        context: AssetCheckExecutionContext, mongodb: MongoDBResource, export_directory: ExportDirectoryResource
    ) -> AssetCheckResult:
        database = mongodb.get_database()
        directory = export_directory.directory()
        mismatched: list[str] = []
        checked = 0
        for deanery, run_dates in run_dates_by_deanery(context).items():
            names = [
                file["_id"]
                for file in database[EXPORT_FILE].find(
                    {
                        "fileType": stream.file_type,
                        "deanery": deanery,
                        "runDate": {"$in": [dt.datetime.combine(day, dt.time.min) for day in run_dates]},
                    },
                    {"_id": 1},
                )
            ]
            marked = _marked_references(database, stream, names)
            for name in names:
                checked += 1
                on_disk = sorted(directory.references(name)) if directory.exists(name) else None
                if on_disk != sorted(marked.get(name, [])):
                    mismatched.append(name)
        return AssetCheckResult(
            passed=not mismatched,
            severity=AssetCheckSeverity.ERROR,
            metadata={"files_checked": checked, "mismatched_files": MetadataValue.json(mismatched)},
        )

    @asset_check(
        asset=export_file,
        partitions_def=export_partitions,
        description=f"The deanery's INVALID_DATA {stream.record_noun}s did not grow since the previous export.",
    )
    def invalid_records_not_growing(context: AssetCheckExecutionContext, mongodb: MongoDBResource) -> AssetCheckResult:
        database = mongodb.get_database()
        # An equality on status alone (indexed); INVALID_DATA records are few, so they are counted here.
        invalid = Counter(
            d.get("deanery") for d in database[stream.records_collection].find({"status": INVALID_DATA}, {"deanery": 1})
        )
        counts, grew = {}, []
        for deanery in run_dates_by_deanery(context):
            count = invalid[deanery]
            state_id = f"{stream.counter_id(deanery)}_invalid"
            previous = (database[CHECK_STATE].find_one({"_id": state_id}) or {}).get("count")
            database[CHECK_STATE].update_one({"_id": state_id}, {"$set": {"count": count}}, upsert=True)
            counts[deanery] = {"invalid_records": count, "previous": previous}
            if previous is not None and count > previous:
                grew.append(deanery)
        return AssetCheckResult(
            passed=not grew,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "invalid_records": sum(c["invalid_records"] for c in counts.values()),
                "grew_in": MetadataValue.json(grew),
                "by_deanery": MetadataValue.json(counts),
            },
        )

    return [sequence_numbers_are_contiguous, file_lines_match_exported_records, invalid_records_not_growing]


def _sequence_report(database, stream: ExportStream, deanery: str) -> dict:
    files = list(database[EXPORT_FILE].find({"fileType": stream.file_type, "deanery": deanery}, {"seq": 1, "state": 1}))
    numbers = sorted(f["seq"] for f in files)
    counter = database[COUNTER].find_one({"_id": stream.counter_id(deanery)}) or {}
    open_batch = counter.get("openBatch") or {}
    expected = list(range(numbers[0], numbers[0] + len(numbers))) if numbers else []
    gaps = sorted(set(expected) - set(numbers))
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    # Numbers taken by a batch still being written are not gaps yet; the next run finishes that batch.
    incomplete = sorted(f["seq"] for f in files if f["state"] != FILE_COMPLETE)
    counter_matches = not numbers or counter.get("seq") == numbers[-1] or open_batch.get("state") == "NUMBERED"
    return {
        "passed": not gaps and not duplicates and counter_matches,
        "files": len(numbers),
        "first_sequence": numbers[0] if numbers else 0,
        "last_sequence": numbers[-1] if numbers else 0,
        "counter_sequence": counter.get("seq", 0),
        "gaps": gaps,
        "duplicates": duplicates,
        "in_progress": incomplete,
    }


def _marked_references(database, stream: ExportStream, names: list[str]) -> dict[str, list[int]]:
    """Business ids (placementId, notificationId) of the records marked EXPORTED with each of ``names``.

    One file (the daily run): ``distinct`` returns just the ids without reading whole records. Many files
    (a backfill): one query for them all, since a ``distinct`` per file would scan the collection each time.
    """
    records = database[stream.records_collection]
    reference = stream.reference_field
    if len(names) == 1:
        return {names[0]: records.distinct(reference, {"exportedFileName": names[0], "status": EXPORTED})}
    marked: dict[str, list[int]] = {}
    for record in records.find(
        {"exportedFileName": {"$in": names}}, {reference: 1, "exportedFileName": 1, "status": 1}
    ).batch_size(5000):
        if record.get("status") == EXPORTED:
            marked.setdefault(record["exportedFileName"], []).append(record[reference])
    return marked


@asset_check(
    asset=notification_export_file,
    partitions_def=export_partitions,
    description="No notification the deanery's DNC file for this day should carry is still TO_EXPORT.",
)
def no_notifications_left_behind(
    context: AssetCheckExecutionContext, mongodb: MongoDBResource, export_policy: ExportPolicyResource
) -> AssetCheckResult:
    exporter = build_exporter(mongodb, export_policy, NOTIFICATION_STREAM)
    left = [
        record
        for deanery, run_dates in run_dates_by_deanery(context).items()
        for record in exporter.select(deanery, run_dates).records
    ]
    return AssetCheckResult(
        passed=not left,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "notifications_left": len(left),
            "sample_notification_ids": MetadataValue.json([r.reference for r in left[:_SAMPLE]]),
        },
    )


APP_EXPORT_CHECKS = [no_records_past_their_start_date, *build_export_checks(APP_STREAM, app_export_file)]
NOTIFICATION_EXPORT_CHECKS = [
    no_notifications_left_behind,
    *build_export_checks(NOTIFICATION_STREAM, notification_export_file),
]
