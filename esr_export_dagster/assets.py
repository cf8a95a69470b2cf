"""The daily ESR APP export, as two assets partitioned by (run date, deanery)."""

from collections import Counter
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, MetadataValue, asset, graph_asset

from .ops import allocate_file_sequence, open_app_export_batches, write_app_export_files
from .partitions import export_partitions, run_dates_by_deanery
from .resources import ExportPolicyResource, MongoDBResource, build_exporter
from .selection_frame import partition_keys_of, selections_to_frame

EXPORT_GROUP = "esr_app_export"
# A backfill of a month for every deanery is one run, not 403: the ops take the run's partitions deanery by
# deanery in date order, which exports exactly what running each day on time would have.
BACKFILL_POLICY = BackfillPolicy.single_run()


@asset(
    partitions_def=export_partitions,
    group_name=EXPORT_GROUP,
    kinds={"mongodb", "pandas"},
    backfill_policy=BACKFILL_POLICY,
)
def app_record_selection(
    context: AssetExecutionContext,
    mongodb: MongoDBResource,
    export_policy: ExportPolicyResource,
) -> Any:
    """The applicant records the deanery's APP file for this day must carry.

    GeneratedAppRecords still TO_EXPORT whose placement starts between 2 days and 13 weeks after the
    partition's date (ESR's window, judged against the partition's date and never the wall clock, so a
    backfill of a missed day selects what that day should have sent). Only ids and scheduling fields are
    kept: this table is persisted by Dagster and must carry no personal data. Records missing a mandatory
    field are listed with the names of those fields and are set to INVALID_DATA by the export.

    A run over many partitions (a backfill) returns one table per partition.
    """
    exporter = build_exporter(mongodb, export_policy)
    selections = [
        exporter.select(deanery, run_dates) for deanery, run_dates in run_dates_by_deanery(context).items()
    ]
    frame = selections_to_frame(selections)
    valid = frame[frame["invalid_fields"] == ""]
    per_post = Counter(zip(valid["run_date"], valid["deanery_post_number"]))
    context.add_output_metadata(
        {
            "dagster/row_count": len(frame),
            "eligible_records": len(frame),
            "valid_records": len(valid),
            "invalid_records": len(frame) - len(valid),
            "largest_per_post_count": max(per_post.values(), default=0),
            "eligibility_window": export_policy.settings().window.describe(),
            "preview": MetadataValue.md(_preview(frame)),
        }
    )
    if len(context.partition_keys) == 1:
        return frame
    by_partition = {str(key): frame.iloc[0:0] for key in context.partition_keys}
    for key, rows in frame.groupby(partition_keys_of(frame)):
        by_partition[str(key)] = rows.reset_index(drop=True)
    return by_partition


@graph_asset(
    partitions_def=export_partitions,
    group_name=EXPORT_GROUP,
    ins={"app_record_selection": AssetIn()},
    kinds={"mongodb", "csv"},
    backfill_policy=BACKFILL_POLICY,
)
def app_export_file(app_record_selection: pd.DataFrame) -> dict:
    """The deanery's APP file(s) for the day, delivered to ESR_EXPORT_DIR, and the records marked EXPORTED.

    One file `DE_<DEANERY>_APP_<YYYYMMDD>_<SEQ>.DAT` per deanery and day, more when a post has over 40
    applicants (ESR quarantines such files). Every eligible record lands in exactly one file, sequence
    numbers run on without gap or repeat, and a run killed at any point is finished by the next run of the
    deanery under the same file name with the same records. With nothing eligible, no file is written and
    no number is taken.
    """
    opened = open_app_export_batches(app_record_selection)
    numbered = allocate_file_sequence(opened)
    return write_app_export_files(opened, numbered)


def _preview(frame: pd.DataFrame, limit: int = 20) -> str:
    """The first rows, as a fixed-width table in a code block (ids and dates only)."""
    if frame.empty:
        return "No eligible records."
    columns = ["placement_id", "deanery", "deanery_post_number", "start_date", "run_date", "invalid_fields"]
    return "```\n" + frame[columns].head(limit).to_string(index=False) + "\n```"
