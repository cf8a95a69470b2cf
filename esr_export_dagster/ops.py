"""The ops behind each stream's export file asset: open a batch, take sequence numbers, write the files.

Each op is idempotent, so Dagster's RetryPolicy can re-run it after any transient MongoDB failure: the
WriteConflict (code 112) of the 2021 incident, a TransientTransactionError, a lost connection. Errors that
a retry cannot fix (an unwritable directory, bad configuration) fail the step at once, with a message that
names ids and fields, never personal data.
"""

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetExecutionContext,
    Backoff,
    Config,
    Failure,
    In,
    Jitter,
    MetadataValue,
    Nothing,
    OpDefinition,
    OpExecutionContext,
    RetryPolicy,
    TableColumn,
    TableRecord,
    TableSchema,
    op,
)
from pydantic import Field

from .domain.deaneries import UnknownDeaneryError
from .domain.past_start import RUN_CONFIG_FLAG
from .domain.streams import ExportStream
from .partitions import run_dates_by_deanery
from .resources import ExporterResource, WallClockResource
from .storage.errors import ExportStateError
from .storage.export_dir import ExportDirectoryError
from .storage.exporter import Exporter, FileOutcome, OpenOutcome
from .storage.ledger import FILE_COMPLETE
from .storage.mongo import is_transient

# Backoff with jitter so that deaneries retrying after the same conflict do not collide again in step.
# Six attempts, each waiting up to the 5 s server-selection timeout, ride out about 40 s of outage (a
# replica-set election takes about 12 s); a longer outage fails the run, which run retries pick up.
EXPORT_RETRY_POLICY = RetryPolicy(
    max_retries=5,
    delay=0.25,
    backoff=Backoff.EXPONENTIAL,
    jitter=Jitter.PLUS_MINUS,
)
# The ops that take sequence numbers share a concurrency pool; its limit is `concurrency.pools` in the
# instance's dagster.yaml.
FILE_SEQUENCE_POOL = "esr_file_sequence"


@dataclass(frozen=True)
class NumberedBatch:
    deanery: str
    batch_id: str
    file_names: tuple[str, ...]
    sequences: tuple[int, ...]


@contextlib.contextmanager
def retrying_transient_errors(context: OpExecutionContext | AssetExecutionContext, step: str) -> Iterator[None]:
    """Let transient errors reach the RetryPolicy; turn every other error into a final, safe Failure."""
    try:
        yield
    except Failure:
        raise
    except Exception as error:
        if is_transient(error):
            context.log.warning(
                f"{step}: transient {error.__class__.__name__}{_code(error)}; "
                f"attempt {context.retry_number + 1} failed, the retry policy takes over"
            )
            raise
        raise Failure(
            description=f"{step} failed: {_safe_message(error)}",
            allow_retries=False,
        ) from None


@dataclass(frozen=True)
class ExportOps:
    """The three steps of one stream's export, as ops named after the stream."""

    open_batches: OpDefinition
    allocate_sequence: OpDefinition
    write_files: OpDefinition


class ExportRunConfig(Config):
    """Run configuration of the APP export (Launchpad, or "Open launchpad" in the Materialize dialog)."""

    export_past_start: bool = Field(
        default=False,
        description=(
            "Also export applicant records whose trainee has already started (start date on or before today, "
            "UTC). Off by default: the stale-record alert has told the trust to hire by hand, and a file sent "
            "now would hire the trainee twice. Set it only after the trust confirmed it did not."
        ),
    )


def _open_batches(
    context: OpExecutionContext,
    stream: ExportStream,
    exporter_resource: ExporterResource,
    withhold_started_by: dt.date | None,
) -> list[OpenOutcome]:
    with retrying_transient_errors(context, "Opening the export batch"):
        exporter = exporter_resource.for_stream(stream, withhold_started_by)
        for note in exporter.prepare():
            context.log.warning(note)
        outcomes = []
        for deanery, run_dates in run_dates_by_deanery(context).items():
            # The records are read again here, not handed over from the selection asset: a plan is only
            # accepted against the counter as it is now, so this asset is correct on its own
            # (docs/export-protocol.md, "Why the file asset selects again").
            outcome = exporter.open_batch(deanery, run_dates, context.run_id)
            for finished in outcome.finished_files:
                context.log.warning(
                    f"{deanery}: finished {finished.name} ({finished.line_count} records), left open by an "
                    "interrupted or concurrent run, before planning this run's files"
                )
            for note in outcome.notes:
                context.log.warning(f"{deanery}: {note}")
            if outcome.duplicate_references:
                context.log.warning(
                    f"{deanery}: {stream.reference_field}(s) {', '.join(map(str, outcome.duplicate_references))} "
                    f"are each held by more than one {stream.record_noun}: those set to INVALID_DATA, not "
                    "exported (see their generationError)"
                )
            if outcome.invalid_count:
                context.log.warning(
                    f"{deanery}: {outcome.invalid_count} eligible {stream.record_noun}s set to INVALID_DATA "
                    "(missing or invalid mandatory fields; see generationError)"
                )
            if outcome.withheld_count:
                context.log.warning(
                    f"{deanery}: {outcome.withheld_count} {stream.record_noun}(s) withheld: the trainee has already "
                    f"started (start date on or before {withhold_started_by}). They stay TO_EXPORT; after the trust "
                    f"confirms it did not hire by hand, re-run with run config {RUN_CONFIG_FLAG}: true"
                )
            context.log.info(
                f"{deanery}: {'batch ' + outcome.batch_id + ' opened' if outcome.batch_id else 'nothing to export'}"
            )
            outcomes.append(outcome)
        return outcomes


def build_export_ops(
    stream: ExportStream, allocation_retry_policy: RetryPolicy | None = EXPORT_RETRY_POLICY
) -> ExportOps:
    """``open_<stream>_export_batches`` -> ``allocate_<stream>_file_sequence`` -> ``write_<stream>_export_files``.

    ``allocation_retry_policy`` is the policy that carries the numbering through WriteConflicts on the counter
    (the one the 2021 exporter had lost); a test builds the job without it to show what it saves.
    """

    open_tags = {"kind": "mongodb"}
    open_name = f"open_{stream.name}_export_batches"
    # Ordered after the selection asset (lineage, and a job's runs select first) without loading a value from it.
    after_selection = {"record_selection": In(Nothing)}
    if stream.anchor_is_start_date:

        @op(name=open_name, ins=after_selection, retry_policy=EXPORT_RETRY_POLICY, tags=open_tags)
        def open_export_batches(
            context: OpExecutionContext,
            config: ExportRunConfig,
            exporter: ExporterResource,
            wall_clock: WallClockResource,
        ) -> list[OpenOutcome]:
            """Freeze each deanery's files for this run, after finishing any batch an earlier run left open.

            Records whose trainee has already started (start date on or before today, UTC) are withheld
            and stay TO_EXPORT, unless the run is launched with ``export_past_start: true``.
            """
            withhold_started_by = None if config.export_past_start else wall_clock.today()
            if config.export_past_start:
                context.log.warning(
                    "export_past_start is true: records whose trainee has already started go out in this run's "
                    "files (the trust confirmed it did not hire by hand)"
                )
            return _open_batches(context, stream, exporter, withhold_started_by)

    else:

        @op(name=open_name, ins=after_selection, retry_policy=EXPORT_RETRY_POLICY, tags=open_tags)
        def open_export_batches(context: OpExecutionContext, exporter: ExporterResource) -> list[OpenOutcome]:
            """Freeze each deanery's files for this run, after finishing any batch an earlier run left open."""
            return _open_batches(context, stream, exporter, None)

    @op(
        name=f"allocate_{stream.name}_file_sequence",
        retry_policy=allocation_retry_policy,
        tags={"kind": "mongodb"},
        pool=FILE_SEQUENCE_POOL,
    )
    def allocate_file_sequence(
        context: OpExecutionContext,
        opened: list[OpenOutcome],
        exporter: ExporterResource,
    ) -> list[NumberedBatch]:
        """Take the deanery's next file sequence numbers from ``counter``, one per planned file.

        A single compare-and-set on the counter document (shared by all deaneries by default): no transaction.
        The numbers are recorded on the deanery's open batch in the same update, so a retry after a
        WriteConflict or a lost acknowledgement takes the same numbers, and a run that lost the race to another
        deanery reads the counter again and takes the next ones.
        """
        with retrying_transient_errors(context, "Allocating file sequence numbers"):
            stream_exporter = exporter.for_stream(stream)
            numbered = []
            for outcome in opened:
                if outcome.batch_id is None:
                    continue
                batch = stream_exporter.allocate_sequence(outcome.deanery, outcome.batch_id)
                files = batch.files
                context.log.info(
                    f"{outcome.deanery}: {stream.file_type} sequence numbers {files[0].sequence}..{files[-1].sequence} "
                    f"for {len(files)} file(s)"
                )
                numbered.append(
                    NumberedBatch(
                        deanery=outcome.deanery,
                        batch_id=outcome.batch_id,
                        file_names=tuple(file.name for file in files),
                        sequences=tuple(file.sequence for file in files),
                    )
                )
            return numbered

    @op(name=f"write_{stream.name}_export_files", retry_policy=EXPORT_RETRY_POLICY, tags={"kind": "mongodb"})
    def write_export_files(
        context: AssetExecutionContext,
        opened: list[OpenOutcome],
        numbered: list[NumberedBatch],
        exporter: ExporterResource,
    ) -> dict[str, dict]:
        """Write each numbered file atomically, mark its records EXPORTED, and close the deanery's batch."""
        with retrying_transient_errors(context, "Writing the export files"):
            stream_exporter = exporter.for_stream(stream)
            written: list[FileOutcome] = []
            for batch in numbered:
                outcomes = stream_exporter.write_batch(batch.deanery, batch.batch_id)
                for outcome in outcomes:
                    context.log.info(
                        f"{outcome.deanery}: wrote {outcome.name} with {outcome.line_count} records"
                        + (f", {outcome.omitted_count} dropped (changed upstream)" if outcome.omitted_count else "")
                    )
                written.extend(outcomes)
            # The materializations (one per partition) are reported by the delivery op after this one.
            return summarise_partitions(context, stream_exporter, opened, written)

    return ExportOps(open_export_batches, allocate_file_sequence, write_export_files)


def summarise_partitions(
    context: OpExecutionContext | AssetExecutionContext,
    exporter: Exporter,
    opened: list[OpenOutcome],
    written: list[FileOutcome],
) -> dict[str, dict]:
    """Per partition: counts, file names and sequence numbers; ids and counts only, no personal data."""
    invalid = {outcome.deanery: outcome.invalid_by_run_date for outcome in opened}
    withheld = {outcome.deanery: outcome.withheld_by_run_date for outcome in opened}
    recovered = {file.name for outcome in opened for file in outcome.finished_files}
    window = exporter.settings.eligibility.describe()
    summaries: dict[str, dict] = {}
    for deanery, run_dates in run_dates_by_deanery(context).items():
        for run_date in run_dates:
            this_run = [f for f in written if f.deanery == deanery and f.run_date == run_date]
            files = exporter.ledger.files_for(deanery, run_date)
            names = {d["_id"] for d in files}
            summaries[f"{run_date.isoformat()}|{deanery}"] = {
                "deanery": deanery,
                "run_date": run_date.isoformat(),
                "window": window,
                "exported_by_this_run": sum(f.line_count for f in this_run),
                "files_written_by_this_run": [f.name for f in this_run],
                "files_for_partition": [
                    {"name": d["_id"], "sequence": d["seq"], "lines": d.get("lineCount"), "state": d["state"]}
                    for d in files
                ],
                "invalid_marked_this_run": invalid.get(deanery, {}).get(run_date, 0),
                "withheld_past_start": withheld.get(deanery, {}).get(run_date, 0),
                "largest_post_count": max((f.largest_post_count for f in this_run), default=0),
                "recovered_files": sorted(recovered & names),
                "normalised_fields": dict(sum((Counter(f.normalised_fields) for f in this_run), Counter())),
                # Across every run of the partition, from the file ledger: what its files hold.
                "exported_all_runs": sum(d.get("lineCount") or 0 for d in files if d["state"] == FILE_COMPLETE),
            }
    return summaries


FILES_TABLE_SCHEMA = TableSchema(
    columns=[
        TableColumn("file", "string", description="File name in ESR_EXPORT_DIR"),
        TableColumn(
            "sequence", "int", description="Sequence number from the counter (one shared by all deaneries by default)"
        ),
        TableColumn("lines", "int", description="Records in the file"),
        TableColumn("state", "string", description="COMPLETE once written and its records marked EXPORTED"),
        TableColumn("this_run", "bool", description="Written (or finished) by this run"),
    ]
)


def partition_metadata(summary: Mapping[str, Any], stream: ExportStream) -> dict[str, Any]:
    """One partition's own facts: what this run did for its date and deanery, its files, its totals so far."""
    files = summary["files_for_partition"]
    this_run = set(summary["files_written_by_this_run"]) | set(summary["recovered_files"])
    exported = summary["exported_by_this_run"]
    metadata: dict[str, Any] = {
        "exported_records": exported,
        "invalid_records": summary["invalid_marked_this_run"],
        "total_exported_records": summary["exported_all_runs"],
        "file_count": len(files),
        "files": MetadataValue.table(
            records=[
                TableRecord(
                    {
                        "file": f["name"],
                        "sequence": f["sequence"],
                        "lines": f["lines"] if f["lines"] is not None else 0,
                        "state": f["state"],
                        "this_run": f["name"] in this_run,
                    }
                )
                for f in files
            ],
            schema=FILES_TABLE_SCHEMA,
        ),
        "sequence_numbers": ", ".join(str(f["sequence"]) for f in files) or "none",
        "eligibility_window": summary["window"],
        "outcome": MetadataValue.text(_outcome(summary, stream)),
    }
    if stream.anchor_is_start_date:
        metadata["withheld_past_start"] = summary["withheld_past_start"]
    if stream.limits_records_per_post:
        metadata["largest_per_post_count"] = summary["largest_post_count"]
    if summary["normalised_fields"]:
        metadata["normalised_fields"] = MetadataValue.json(summary["normalised_fields"])
    return metadata


def _outcome(summary: Mapping[str, Any], stream: ExportStream) -> str:
    files = summary["files_for_partition"]
    written = summary["files_written_by_this_run"]
    if written:
        return f"This run exported {summary['exported_by_this_run']} {stream.record_noun}(s) in {', '.join(written)}."
    if files:
        return (
            f"Nothing new: this run exported nothing; the partition's {len(files)} file(s) already hold "
            f"{summary['exported_all_runs']} {stream.record_noun}(s)."
        )
    return "No eligible records: no file written and no sequence number taken."


def run_totals(summaries: Mapping[str, Mapping[str, Any]], stream: ExportStream) -> str:
    """The whole run in one line, for the run's log (each partition's materialization has its own share)."""
    values = list(summaries.values())
    line = (
        f"Run totals over {len(values)} partition(s): {sum(s['exported_by_this_run'] for s in values)} "
        f"{stream.record_noun}(s) exported in {sum(len(s['files_written_by_this_run']) for s in values)} file(s), "
        f"{sum(s['invalid_marked_this_run'] for s in values)} set to INVALID_DATA"
    )
    if stream.anchor_is_start_date:
        line += f", {sum(s['withheld_past_start'] for s in values)} withheld past their start date"
    return line


def _code(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return f" (code {code})" if code is not None else ""


def _safe_message(error: BaseException) -> str:
    """Our own errors are written to be safe to show; anything else is reduced to its class and code."""
    if isinstance(error, (ExportDirectoryError, ExportStateError, UnknownDeaneryError)):
        return str(error)
    return f"{error.__class__.__name__}{_code(error)}"
