"""The two assets of each daily ESR export (APP, DNC), partitioned by (run date, deanery)."""

from collections import Counter
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    Nothing,
    RetryPolicy,
    asset,
    graph_asset,
)

from .delivery_ops import build_delivery_op
from .domain.streams import ExportStream
from .ops import EXPORT_RETRY_POLICY, build_export_ops, retrying_transient_errors
from .partitions import export_partitions, run_dates_by_deanery
from .resources import ExporterResource
from .storage.mongo import MongoUnavailableError

if TYPE_CHECKING:
    import pandas as pd

# A backfill of a month for every deanery is one run, not 403: the ops take the run's partitions deanery by
# deanery in date order, which exports exactly what running each day on time would have.
BACKFILL_POLICY = BackfillPolicy.single_run()

APP_SELECTION_DESCRIPTION = """The applicant records the deanery's APP file for this day must carry.

GeneratedAppRecords still TO_EXPORT whose placement starts between 2 days and 13 weeks after the
partition's date (ESR's window, judged against the partition's date and never the wall clock, so a
backfill of a missed day selects what that day should have sent). Each partition's materialization
reports the counts and a preview of ids and dates, never personal data. Records missing a mandatory
field are listed with the names of those fields and are set to INVALID_DATA by the export.

This asset reports; it stores nothing. The file asset reads the records again as it plans its files,
so either asset can be materialized on its own."""

APP_FILE_DESCRIPTION = """The deanery's APP file(s) for the day, archived in ESR_EXPORT_DIR and delivered to ESR's drop, and the records marked EXPORTED.

One file `DE_<DEANERY>_APP_<YYYYMMDD>_<SEQ>.DAT` per deanery and day, more when a post has over 40
applicants (ESR quarantines such files). Every eligible record lands in exactly one file, sequence
numbers run on without gap or repeat, and a run killed at any point is finished by the next run of the
deanery under the same file name with the same records. With nothing eligible, no file is written and
no number is taken. Records whose trainee has already started are withheld (withheld_past_start) unless
the run sets export_past_start: true.

What to do when stale_to_export_sensor alerts:
- overdue: check the catch-up run (tag esr/trigger=stale-record-catch-up) succeeded, or materialize
  today's partition of the deanery;
- at risk: materialize the partition the alert links (start date - 2 days) now, if no catch-up run did;
- past start: the records are withheld; tell the trust to hire by hand, then correct their status in TIS;
  only if the trust confirms it did not hire by hand, re-materialize with export_past_start: true;
- unknown deanery: correct the deanery in TIS; that deanery's next run exports them;
- run failed: open the run for the error, fix its cause, re-materialize the partition (nothing is
  exported twice and no file number is lost)."""

NOTIFICATION_SELECTION_DESCRIPTION = """The notifications the deanery's DNC file for this day must carry.

Notification records (next trainee on a post, withdrawals, changed dates, new posts) still TO_EXPORT
that were created before the partition's date at the notification export time (14:00 UTC by default),
so a backfill of a missed day selects what that day should have sent. Each partition's materialization
reports the counts and a preview of ids and dates (the payload is personal data and never shown).
Notifications missing a mandatory field of their kind are listed with the names of those fields and
are set to INVALID_DATA by the export.

This asset reports; it stores nothing. The file asset reads the notifications again as it plans its
file, so either asset can be materialized on its own."""

NOTIFICATION_FILE_DESCRIPTION = """The deanery's DNC file for the day, archived in ESR_EXPORT_DIR and delivered to ESR's drop, and the notifications marked EXPORTED.

One file `DE_<DEANERY>_DNC_<YYYYMMDD>_<SEQ>.DAT` per deanery and day (a later run of the partition puts
notifications that arrived since in a further file), numbered from the deanery's own DNC counter
(separate from the APP numbers) with the same guarantees: every eligible notification in exactly one
file, no gap or repeat in the numbers, a killed run finished by the next one under the same name.
With nothing eligible, no file is written and no number is taken.

What to do when stale_to_export_sensor alerts:
- late notification: open the deanery's daily_notification_export_job runs; a catch-up run of today's
  partition is requested automatically (it takes every notification created before today's cut-off);
- unknown deanery: correct the notifications' deanery in TIS; that deanery's next run exports them;
- run failed: open the run for the error, fix its cause, re-materialize the partition (nothing is
  exported twice and no file number is lost)."""


def build_record_selection_asset(stream: ExportStream, description: str) -> AssetsDefinition:
    """``<stream>_record_selection``: per partition, what the day's file must carry, as counts and a preview."""

    @asset(
        name=stream.selection_asset_name,
        description=description,
        partitions_def=export_partitions,
        group_name=export_group_name(stream),
        kinds={"mongodb", "pandas"},
        backfill_policy=BACKFILL_POLICY,
        # Selecting only reads, so a MongoDB restart or failover during it is ridden out like the ops' are.
        retry_policy=EXPORT_RETRY_POLICY,
    )
    def record_selection(context: AssetExecutionContext, exporter: ExporterResource) -> MaterializeResult:
        try:
            stream_exporter = exporter.for_stream(stream)
        except MongoUnavailableError as error:
            # Unreachable before anything was read is a wrong ESR_MONGODB_URI as often as a server that is
            # down: fail now, so the failure alert goes out at once; a server lost mid-run is retried.
            raise Failure(description=str(error), allow_retries=False) from None
        with retrying_transient_errors(context, f"Selecting the {stream.record_noun}s"):
            selections = [
                stream_exporter.select(deanery, run_dates)
                for deanery, run_dates in run_dates_by_deanery(context).items()
            ]
        # Imported here, not with the module: pandas takes about 0.7 s of CPU to import, and only a run that
        # selects needs it. Every code server (each load of the location) and a run of the file asset alone go
        # without.
        from .selection_frame import partition_keys_of, selections_to_frame

        frame = selections_to_frame(selections)
        by_partition = {str(key): frame.iloc[0:0] for key in context.partition_keys}
        if not frame.empty:
            for key, rows in frame.groupby(partition_keys_of(frame)):
                by_partition[str(key)] = rows.reset_index(drop=True)
        window = stream_exporter.settings.eligibility.describe()
        # One materialization per partition, each with its own rows only.
        for key, rows in by_partition.items():
            context.add_asset_metadata(_selection_metadata(rows, stream, window), partition_key=key)
        context.log.info(
            f"Selected {len(frame)} eligible {stream.record_noun}(s) over {len(by_partition)} partition(s)"
        )
        return MaterializeResult()

    return record_selection


def build_export_file_asset(
    stream: ExportStream,
    record_selection: AssetsDefinition,
    description: str,
    allocation_retry_policy: RetryPolicy | None = EXPORT_RETRY_POLICY,
) -> AssetsDefinition:
    """``<stream>_export_file``: open a batch, take its numbers, write and mark the files, deliver them.

    ``allocation_retry_policy``: see ``build_export_ops``.
    """
    ops = build_export_ops(stream, allocation_retry_policy)
    deliver = build_delivery_op(stream)

    @graph_asset(
        name=stream.file_asset_name,
        description=description,
        partitions_def=export_partitions,
        group_name=export_group_name(stream),
        # Downstream of the selection for lineage and run order; no value passes between them.
        ins={"record_selection": AssetIn(key=record_selection.key, dagster_type=Nothing)},
        kinds={"mongodb", "csv"},
        backfill_policy=BACKFILL_POLICY,
    )
    def export_file(record_selection):
        opened = ops.open_batches(record_selection)
        numbered = ops.allocate_sequence(opened)
        return deliver(ops.write_files(opened, numbered))

    return export_file


def export_group_name(stream: ExportStream) -> str:
    return f"esr_{stream.name}_export"


def _selection_metadata(rows: "pd.DataFrame", stream: ExportStream, window: str) -> dict[str, Any]:
    valid = rows[(rows["invalid_fields"] == "") & (rows["conflict"] == "")]
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "eligible_records": len(rows),
        "valid_records": len(valid),
        "invalid_records": len(rows) - len(valid),
        "eligibility_window": window,
        "preview": MetadataValue.md(_preview(rows, stream)),
    }
    if stream.limits_records_per_post:
        per_post = Counter(valid["deanery_post_number"])
        metadata["largest_per_post_count"] = max(per_post.values(), default=0)
    return metadata


def _preview(frame: "pd.DataFrame", stream: ExportStream, limit: int = 20) -> str:
    """The first rows, as a fixed-width table in a code block (ids and dates only)."""
    if frame.empty:
        return "No eligible records."
    columns = ["reference", "deanery", "deanery_post_number", "anchor_date", "run_date", "invalid_fields"]
    labels = {"reference": stream.reference_field, "anchor_date": stream.anchor_field}
    return "```\n" + frame[columns].head(limit).rename(columns=labels).to_string(index=False) + "\n```"
