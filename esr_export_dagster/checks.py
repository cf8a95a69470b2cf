"""Asset checks on each stream's export file asset: every partition's export is verified against MongoDB
and the files.

Each check is a spec (its name, description and partitions, as the UI lists it) and a small function that
judges the run's partitions and returns the check's own result. A stream's checks run together as one
step (``build_export_file_checks``): one resource set-up and one read of the run's partitions instead of
one step per check, while each check still passes or fails on its own, under its own name, and can be run
alone from the UI.
"""

import datetime as dt
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    Failure,
    MetadataValue,
    multi_asset_check,
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

# The run's partitions as deanery -> run dates (``run_dates_by_deanery``); a backfill's run holds many.
RunDates = Mapping[str, Sequence[dt.date]]

NO_RECORD_PAST_START = "no_record_past_start"
FILE_NUMBERS_CONTIGUOUS = "file_numbers_contiguous"
FILES_MATCH_RECORDS = "files_match_records"
INVALID_RECORDS_NOT_GROWING = "invalid_records_not_growing"
NO_NOTIFICATIONS_LEFT_BEHIND = "no_notifications_left_behind"

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


@dataclass(frozen=True)
class ExportFileCheck:
    """One check of a stream's export file: its spec, and ``evaluate(run_dates, **resources)``, which returns
    the check's result for the run's partitions. The keyword-only parameters of ``evaluate`` are the keys of
    the resources it needs, as a Dagster op's resource parameters are."""

    spec: AssetCheckSpec
    evaluate: Callable[..., AssetCheckResult]

    @property
    def resource_keys(self) -> frozenset[str]:
        parameters = inspect.signature(self.evaluate).parameters.values()
        return frozenset(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def export_file_check_spec(stream: ExportStream, name: str, description: str) -> AssetCheckSpec:
    """A check on ``stream``'s export file, per partition (date × deanery) like the asset."""
    return AssetCheckSpec(
        name=name, asset=stream.file_asset_name, description=description, partitions_def=export_partitions
    )


def build_export_file_checks(stream: ExportStream, checks: Sequence[ExportFileCheck]) -> AssetChecksDefinition:
    """``checks`` as one step named ``<stream>_export_file_checks``: each selected check is evaluated and
    reported under its own name. A check that raises does not stop the others; the step then fails naming
    it, as its own step failed before the checks were folded together."""
    resource_keys = set().union(*(check.resource_keys for check in checks))

    @multi_asset_check(
        name=f"{stream.file_asset_name}_checks",
        specs=[check.spec for check in checks],
        # The UI and a run may select any one check: only the selected ones are evaluated.
        can_subset=True,
        required_resource_keys=resource_keys,
        description=f"The asset checks of {stream.file_asset_name}, evaluated together for the run's partitions.",
    )
    def export_file_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        run_dates = run_dates_by_deanery(context)
        errors: list[tuple[str, Exception]] = []
        for check in checks:
            if check.spec.key not in context.selected_asset_check_keys:
                continue
            resources = {key: getattr(context.resources, key) for key in check.resource_keys}
            try:
                result = check.evaluate(run_dates, **resources)
            except Exception as error:  # the other checks must still be evaluated and reported
                errors.append((check.spec.name, error))
                continue
            yield result
        if errors:
            # Names and error classes only: an error's message may quote a value from a record.
            failed = ", ".join(f"{name} ({type(error).__name__})" for name, error in errors)
            raise Failure(description=f"Could not evaluate check(s): {failed}") from errors[0][1]

    return export_file_checks


# A backfill checks many partitions in one run: each check covers them all and fails if any fails.


def no_record_past_start(
    stream: ExportStream, run_dates: RunDates, *, mongodb: MongoDBResource, wall_clock: WallClockResource
) -> AssetCheckResult:
    database = mongodb.get_database()
    tomorrow = wall_clock.today() + dt.timedelta(days=1)
    stuck = sorted(
        (
            record
            for deanery in run_dates
            for record in pending_records(database, starting_before=tomorrow, deanery=deanery)
            # An undated record is not past its start: the export itself sets it INVALID_DATA.
            if record.start_date is not None
        ),
        key=lambda r: (r.start_date, r.placement_id or 0),
    )
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=NO_RECORD_PAST_START,
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


def past_start_check() -> ExportFileCheck:
    """The APP stream's own check: applicants whose start date came while they waited to be sent."""
    description = (
        "No applicant record of the deanery is still TO_EXPORT with its start date already reached (UTC). Runs "
        "withhold such records from the files (counted as withheld_past_start) so nobody is hired twice. "
        f"What to do: {PAST_START_WHAT_TO_DO}"
    )
    return ExportFileCheck(
        export_file_check_spec(APP_STREAM, NO_RECORD_PAST_START, description), partial(no_record_past_start, APP_STREAM)
    )


def file_numbers_contiguous(
    stream: ExportStream, run_dates: RunDates, *, mongodb: MongoDBResource, export_policy: ExportPolicyResource
) -> AssetCheckResult:
    ledger = ExportLedger(mongodb.get_database(), stream.file_type, export_policy.scope())
    reports = {deanery: ledger.sequence_report(deanery) for deanery in run_dates}
    passed = all(report.passed for report in reports.values())
    gaps = [f"{d}: {n}" for d, report in reports.items() for n in report.gaps]
    repeats = [f"{d}: {n}" for d, report in reports.items() for n in report.duplicates]
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=FILE_NUMBERS_CONTIGUOUS,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=None if passed else f"File numbers out of order. What to do: {NUMBERS_WHAT_TO_DO}",
        metadata={
            "gaps": MetadataValue.text(_ids(gaps)),
            "repeats": MetadataValue.text(_ids(repeats)),
            "by_deanery": MetadataValue.json({deanery: report.shown() for deanery, report in reports.items()}),
        },
    )


def files_match_records(
    stream: ExportStream,
    run_dates: RunDates,
    *,
    mongodb: MongoDBResource,
    export_directory: ExportDirectoryResource,
) -> AssetCheckResult:
    database = mongodb.get_database()
    ledger = ExportLedger(database, stream.file_type)
    directory = export_directory.directory()
    # The partition's files, from the ledger; each compared with the records marked with its name.
    names = [name for deanery, dates in run_dates.items() for name in ledger.file_names_for(deanery, dates)]
    mismatched = []
    for name in names:
        on_disk = sorted(directory.references(name)) if directory.exists(name) else None
        if on_disk != sorted(references_marked_with(database, stream, name)):
            mismatched.append(name)
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=FILES_MATCH_RECORDS,
        passed=not mismatched,
        severity=AssetCheckSeverity.ERROR,
        description=f"{len(mismatched)} file(s) disagree with the records. What to do: {FILES_WHAT_TO_DO}"
        if mismatched
        else None,
        metadata={"files_checked": len(names), "mismatched_files": MetadataValue.text(_ids(mismatched))},
    )


def invalid_records_not_growing(
    stream: ExportStream, run_dates: RunDates, *, mongodb: MongoDBResource
) -> AssetCheckResult:
    database = mongodb.get_database()
    deaneries = list(run_dates)
    invalid = invalid_counts(database, stream)
    current = {deanery: invalid[deanery] for deanery in deaneries}
    memory = InvalidCountMemory(database, stream)
    previous = memory.previous(deaneries)
    memory.record(current)
    grew = [d for d in deaneries if previous[d] is not None and current[d] > previous[d]]
    counts = {d: {"invalid_records": current[d], "previous": previous[d]} for d in deaneries}
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=INVALID_RECORDS_NOT_GROWING,
        passed=not grew,
        severity=AssetCheckSeverity.WARN,
        description=f"More INVALID_DATA in {', '.join(grew)}. What to do: {INVALID_WHAT_TO_DO}" if grew else None,
        metadata={
            "invalid_records": sum(current.values()),
            "grew_in": MetadataValue.text(_ids(grew)),
            "by_deanery": MetadataValue.json(counts),
        },
    )


def export_checks(stream: ExportStream) -> list[ExportFileCheck]:
    """The checks every stream's export file asset carries: numbering, file contents, invalid records."""
    numbers = (
        f"The deanery's {stream.file_type} file numbers run without gap or repeat up to the counter. "
        f"What to do if not: {NUMBERS_WHAT_TO_DO}"
    )
    files = (
        "Each file of the partition holds exactly the records marked EXPORTED with its name. "
        f"What to do if not: {FILES_WHAT_TO_DO}"
    )
    invalid = (
        f"The deanery's INVALID_DATA {stream.record_noun}s did not grow since the previous export. "
        f"What to do if they did: {INVALID_WHAT_TO_DO}"
    )
    return [
        ExportFileCheck(export_file_check_spec(stream, name, description), partial(evaluate, stream))
        for name, evaluate, description in (
            (FILE_NUMBERS_CONTIGUOUS, file_numbers_contiguous, numbers),
            (FILES_MATCH_RECORDS, files_match_records, files),
            (INVALID_RECORDS_NOT_GROWING, invalid_records_not_growing, invalid),
        )
    ]


def no_notifications_left_behind(
    stream: ExportStream, run_dates: RunDates, *, exporter: ExporterResource
) -> AssetCheckResult:
    stream_exporter = exporter.for_stream(stream)
    left = [record for deanery, dates in run_dates.items() for record in stream_exporter.select(deanery, dates).records]
    return AssetCheckResult(
        asset_key=stream.file_asset_name,
        check_name=NO_NOTIFICATIONS_LEFT_BEHIND,
        passed=not left,
        severity=AssetCheckSeverity.ERROR,
        description=f"{len(left)} notification(s) left behind. What to do: {LEFT_BEHIND_WHAT_TO_DO}" if left else None,
        metadata={
            "notifications_left": len(left),
            "notification_ids": MetadataValue.text(_ids(r.reference for r in left[:_SAMPLE])),
        },
    )


def left_behind_check() -> ExportFileCheck:
    """The DNC stream's own check: notifications its day's file should have carried, still waiting."""
    description = (
        "No notification the deanery's DNC file for this day should carry is still TO_EXPORT. "
        f"What to do if one is: {LEFT_BEHIND_WHAT_TO_DO}"
    )
    return ExportFileCheck(
        export_file_check_spec(NOTIFICATION_STREAM, NO_NOTIFICATIONS_LEFT_BEHIND, description),
        partial(no_notifications_left_behind, NOTIFICATION_STREAM),
    )
