"""Asset checks on each stream's export file asset: every partition's export is verified against MongoDB
and the files."""

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

from .domain.past_start import RUN_CONFIG_FLAG
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM, ExportStream
from .partitions import export_partitions, run_dates_by_deanery
from .resources import (
    ExportDirectoryResource,
    ExporterResource,
    ExportPolicyResource,
    MongoDBResource,
    WallClockResource,
)
from .storage.check_queries import InvalidCountMemory, invalid_counts, references_marked_with
from .storage.ledger import ExportLedger
from .storage.stale_query import pending_records

_SAMPLE = 10

# What to do when each check fails: the same words as the README's alert table and run-failure list.
PAST_START_WHAT_TO_DO = (
    "Tell the trust to hire by hand, then set the records' status in TIS; only if the trust confirms it did not "
    f"hire by hand, re-materialize the partition with run config {RUN_CONFIG_FLAG}: true."
)
NUMBERS_WHAT_TO_DO = (
    "Numbers in progress belong to an interrupted run: the deanery's next run finishes them. A gap or a repeat "
    "with nothing in progress is not repaired by a re-run: stop the deanery's runs and tell ESR Support which "
    "file numbers are affected before the next file goes."
)
FILES_WHAT_TO_DO = (
    "Do not send the listed files again by hand. Compare each with the records marked EXPORTED with its name "
    "(exportedFileName); a file missing from ESR_EXPORT_DIR after it was written must be restored from the "
    "transfer's copy, since re-running the partition does not rewrite a finished file."
)
INVALID_WHAT_TO_DO = (
    "The deanery has more records in INVALID_DATA than at the previous check: their generationError names the "
    "missing fields; fix them in TIS and upstream regenerates valid records, which the next run exports."
)
LEFT_BEHIND_WHAT_TO_DO = (
    "Re-materialize today's partition of notification_export_file for the deanery (the stale-record sensor "
    "requests it automatically when catch-up runs are on); it takes every notification created before the cut-off."
)


def _ids(values) -> str:
    """Ids as plain text, readable on the check's page without opening any JSON."""
    return ", ".join(str(v) for v in values) or "none"


# A backfill checks many partitions in one run: each check covers them all and fails if any fails.


@asset_check(
    asset=APP_STREAM.file_asset_name,
    partitions_def=export_partitions,
    description=(
        "No applicant record of the deanery is still TO_EXPORT with its start date already reached (UTC). Runs "
        "withhold such records from the files (counted as withheld_past_start) so nobody is hired twice. "
        f"What to do: {PAST_START_WHAT_TO_DO}"
    ),
)
def no_record_past_start(
    context: AssetCheckExecutionContext, mongodb: MongoDBResource, wall_clock: WallClockResource
) -> AssetCheckResult:
    database = mongodb.get_database()
    tomorrow = wall_clock.today() + dt.timedelta(days=1)
    stuck = sorted(
        (
            record
            for deanery in run_dates_by_deanery(context)
            for record in pending_records(database, starting_before=tomorrow, deanery=deanery)
            # An undated record is not past its start: the export itself sets it INVALID_DATA.
            if record.start_date is not None
        ),
        key=lambda r: (r.start_date, r.placement_id or 0),
    )
    return AssetCheckResult(
        passed=not stuck,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(stuck)} applicant record(s) never sent whose trainee has started. What to do: {PAST_START_WHAT_TO_DO}"
            if stuck
            else None
        ),
        metadata={
            "records_past_start": len(stuck),
            "earliest_start": stuck[0].start_date.isoformat() if stuck else "none",
            "placement_ids": MetadataValue.text(_ids(r.placement_id for r in stuck[:_SAMPLE])),
        },
    )


def build_export_checks(stream: ExportStream, export_file: AssetsDefinition | str) -> list[AssetChecksDefinition]:
    """The checks every stream's export file asset carries: numbering, file contents, invalid records."""

    @asset_check(
        asset=export_file,
        partitions_def=export_partitions,
        description=(
            f"The deanery's {stream.file_type} file numbers run without gap or repeat up to the counter. "
            f"What to do if not: {NUMBERS_WHAT_TO_DO}"
        ),
    )
    def file_numbers_contiguous(
        context: AssetCheckExecutionContext, mongodb: MongoDBResource, export_policy: ExportPolicyResource
    ) -> AssetCheckResult:
        ledger = ExportLedger(mongodb.get_database(), stream.file_type, export_policy.scope())
        reports = {deanery: ledger.sequence_report(deanery) for deanery in run_dates_by_deanery(context)}
        passed = all(report.passed for report in reports.values())
        gaps = [f"{d}: {n}" for d, report in reports.items() for n in report.gaps]
        repeats = [f"{d}: {n}" for d, report in reports.items() for n in report.duplicates]
        return AssetCheckResult(
            passed=passed,
            severity=AssetCheckSeverity.ERROR,
            description=None if passed else f"File numbers out of order. What to do: {NUMBERS_WHAT_TO_DO}",
            metadata={
                "gaps": MetadataValue.text(_ids(gaps)),
                "repeats": MetadataValue.text(_ids(repeats)),
                "by_deanery": MetadataValue.json({deanery: report.shown() for deanery, report in reports.items()}),
            },
        )

    @asset_check(
        asset=export_file,
        partitions_def=export_partitions,
        description=(
            "Each file of the partition holds exactly the records marked EXPORTED with its name. "
            f"What to do if not: {FILES_WHAT_TO_DO}"
        ),
    )
    def files_match_records(
        context: AssetCheckExecutionContext, mongodb: MongoDBResource, export_directory: ExportDirectoryResource
    ) -> AssetCheckResult:
        database = mongodb.get_database()
        ledger = ExportLedger(database, stream.file_type)
        directory = export_directory.directory()
        # The partition's files, from the ledger; each compared with the records marked with its name.
        names = [
            name
            for deanery, run_dates in run_dates_by_deanery(context).items()
            for name in ledger.file_names_for(deanery, run_dates)
        ]
        mismatched = []
        for name in names:
            on_disk = sorted(directory.references(name)) if directory.exists(name) else None
            if on_disk != sorted(references_marked_with(database, stream, name)):
                mismatched.append(name)
        return AssetCheckResult(
            passed=not mismatched,
            severity=AssetCheckSeverity.ERROR,
            description=f"{len(mismatched)} file(s) disagree with the records. What to do: {FILES_WHAT_TO_DO}"
            if mismatched
            else None,
            metadata={"files_checked": len(names), "mismatched_files": MetadataValue.text(_ids(mismatched))},
        )

    @asset_check(
        asset=export_file,
        partitions_def=export_partitions,
        description=(
            f"The deanery's INVALID_DATA {stream.record_noun}s did not grow since the previous export. "
            f"What to do if they did: {INVALID_WHAT_TO_DO}"
        ),
    )
    def invalid_records_not_growing(context: AssetCheckExecutionContext, mongodb: MongoDBResource) -> AssetCheckResult:
        database = mongodb.get_database()
        deaneries = list(run_dates_by_deanery(context))
        invalid = invalid_counts(database, stream)
        current = {deanery: invalid[deanery] for deanery in deaneries}
        memory = InvalidCountMemory(database, stream)
        previous = memory.previous(deaneries)
        memory.record(current)
        grew = [d for d in deaneries if previous[d] is not None and current[d] > previous[d]]
        counts = {d: {"invalid_records": current[d], "previous": previous[d]} for d in deaneries}
        return AssetCheckResult(
            passed=not grew,
            severity=AssetCheckSeverity.WARN,
            description=f"More INVALID_DATA in {', '.join(grew)}. What to do: {INVALID_WHAT_TO_DO}" if grew else None,
            metadata={
                "invalid_records": sum(current.values()),
                "grew_in": MetadataValue.text(_ids(grew)),
                "by_deanery": MetadataValue.json(counts),
            },
        )

    return [file_numbers_contiguous, files_match_records, invalid_records_not_growing]


@asset_check(
    asset=NOTIFICATION_STREAM.file_asset_name,
    partitions_def=export_partitions,
    description=(
        "No notification the deanery's DNC file for this day should carry is still TO_EXPORT. "
        f"What to do if one is: {LEFT_BEHIND_WHAT_TO_DO}"
    ),
)
def no_notifications_left_behind(context: AssetCheckExecutionContext, exporter: ExporterResource) -> AssetCheckResult:
    exporter = exporter.for_stream(NOTIFICATION_STREAM)
    left = [
        record
        for deanery, run_dates in run_dates_by_deanery(context).items()
        for record in exporter.select(deanery, run_dates).records
    ]
    return AssetCheckResult(
        passed=not left,
        severity=AssetCheckSeverity.ERROR,
        description=f"{len(left)} notification(s) left behind. What to do: {LEFT_BEHIND_WHAT_TO_DO}" if left else None,
        metadata={
            "notifications_left": len(left),
            "notification_ids": MetadataValue.text(_ids(r.reference for r in left[:_SAMPLE])),
        },
    )
