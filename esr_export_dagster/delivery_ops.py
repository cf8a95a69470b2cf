"""Delivery to ESR's drop as the last step of each export, and the job that re-sends a file on ESR's request.

Until a file is in ESR's drop nothing has been exported, whatever its records' status says. So the
export's graph ends with ``deliver_<stream>_export_files``: every written, undelivered file of the run's
deaneries goes to the drop, oldest number first, and the file ledger records where it went, its size,
SHA-256 and ETag, and when. A destination that is down or refuses the credentials fails the step after
its retries, naming the bucket or host; the records stay EXPORTED in their archived files and the next
run delivers them before its own.
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    ConfigurableIOManager,
    DagsterInvariantViolationError,
    ExecuteInProcessResult,
    Failure,
    InputContext,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    Out,
    OutputContext,
    TableColumn,
    TableRecord,
    TableSchema,
    job,
    op,
)
from pydantic import Field

from .delivery_resource import DeliveryResource
from .domain.delivery_url import DeliveryUrlError
from .domain.esr_csv import parse_export_file_name
from .domain.streams import STREAMS, ExportStream
from .ops import EXPORT_RETRY_POLICY, partition_metadata, retrying_transient_errors, run_totals
from .partitions import run_dates_by_deanery
from .resources import ExportDirectoryResource, MongoDBResource
from .storage.collections import EXPORT_FILE
from .storage.deliverer import UNDELIVERED, Delivered, Deliverer
from .storage.delivery import DeliveryUnavailableError, Destination
from .storage.errors import shown

_STAY = (
    "Nothing is lost: the records stay EXPORTED in their files, which stay in ESR_EXPORT_DIR, and the next run of the "
    "deanery delivers them before its own files."
)


def _destination(delivery: DeliveryResource) -> Destination:
    try:
        return delivery.destination()
    except DeliveryUrlError as error:
        raise Failure(description=f"Delivery is misconfigured: {error}", allow_retries=False) from None


RUN_SUMMARY_IO_MANAGER_KEY = "run_summary_io_manager"


class RunSummaryIOManager(ConfigurableIOManager):
    """Hands the file asset's value, the run's per-partition summary, to the run's own caller and stores nothing.

    The asset's partitions are its files, the file ledger and each materialization's metadata; the summary
    only tells an in-process run's caller (``make run``, tests) what this run did, from its result. Storing
    nothing is what lets one run cover many partitions (a single-run backfill) without an IO manager that
    can store one value per partition, and it suits every executor, unlike Dagster's in-memory one.
    """

    def handle_output(self, context: OutputContext, obj: dict) -> None:
        context.log.debug(f"{len(obj)} partition summary(ies) reported as metadata, not stored")

    def load_input(self, context: InputContext) -> dict:
        raise DagsterInvariantViolationError(
            "An export file asset stores no value to load: read its materializations' metadata, or the file "
            "ledger (exportFile)"
        )


def run_summary_of(result: ExecuteInProcessResult, stream: ExportStream) -> dict[str, dict]:
    """What an in-process run of the stream's job did, per partition key (``make run`` prints it)."""
    return result.asset_value(AssetKey(stream.file_asset_name))


def build_delivery_op(stream: ExportStream) -> OpDefinition:
    """``deliver_<stream>_export_files``: after ``write_<stream>_export_files``, with the same retry policy."""

    @op(
        name=f"deliver_{stream.name}_export_files",
        retry_policy=EXPORT_RETRY_POLICY,
        out=Out(
            dict,
            description="What this run did, per partition key: counts, file names, deliveries (no personal data).",
            io_manager_key=RUN_SUMMARY_IO_MANAGER_KEY,
        ),
    )
    def deliver_export_files(
        context: AssetExecutionContext,
        summaries: dict,
        mongodb: MongoDBResource,
        export_directory: ExportDirectoryResource,
        delivery: DeliveryResource,
    ) -> dict[str, dict]:
        """Put every written, undelivered file of the run's deaneries into ESR's drop, oldest number first."""
        destination = _destination(delivery)
        with retrying_transient_errors(context, "Delivering the export files"):
            deliverer = Deliverer(mongodb.get_database(), export_directory.directory(), destination, stream.file_type)
            deaneries = list(run_dates_by_deanery(context))
            try:
                with destination:
                    outcome = deliverer.deliver_backlog(deaneries)
            except DeliveryUnavailableError as error:
                last = context.retry_number >= EXPORT_RETRY_POLICY.max_retries
                context.log.warning(
                    f"Delivery attempt {context.retry_number + 1} failed: {error}"
                    + ("" if last else "; the retry policy takes over")
                )
                raise Failure(
                    description=f"Delivering the export files failed: {error}. {_STAY}", allow_retries=True
                ) from None
            for delivered in outcome.delivered:
                receipt = delivered.receipt
                context.log.info(
                    f"{delivered.deanery}: delivered {delivered.name} to {receipt.destination} as {receipt.location} "
                    f"({receipt.size} bytes, SHA-256 {receipt.sha256[:12]}...)"
                    + (
                        ", found there already with the same bytes (an earlier attempt put it)"
                        if receipt.already_there
                        else ""
                    )
                )
            for _name, reason in sorted(outcome.refused.items()):
                context.log.error(f"Not delivered: {reason}")
            delivered_summaries = _with_deliveries(summaries, outcome.delivered, deliverer, stream)
            # The asset's output comes from this op: one materialization per partition, each with its own
            # facts, its deliveries among them.
            for partition_key, summary in delivered_summaries.items():
                context.add_asset_metadata(
                    {**partition_metadata(summary, stream), **_delivery_metadata(destination, summary)},
                    partition_key=partition_key,
                )
            context.log.info(run_totals(delivered_summaries, stream))
            if outcome.refused:
                raise Failure(
                    description=(
                        f"{len(outcome.refused)} file(s) not delivered: "
                        + " ".join(outcome.refused[name] for name in sorted(outcome.refused))
                        + (f" The other {len(outcome.delivered)} file(s) were delivered." if outcome.delivered else "")
                    ),
                    allow_retries=False,
                )
            return delivered_summaries

    return deliver_export_files


def _with_deliveries(
    summaries: dict[str, dict], delivered: list[Delivered], deliverer: Deliverer, stream: ExportStream
) -> dict[str, dict]:
    """Each partition's summary, plus the files this run delivered for it and those still undelivered.

    A file of an earlier date that this run delivered (a backlog left by a failed delivery) belongs to no
    partition of the run: it is listed under the deanery's earliest partition here, which delivered it.
    """
    in_run = {(summary["deanery"], summary["run_date"]): key for key, summary in summaries.items()}
    earliest: dict[str, str] = {}
    for key, summary in sorted(summaries.items(), key=lambda item: item[1]["run_date"]):
        earliest.setdefault(summary["deanery"], key)
    delivered_for: dict[str, list[dict[str, Any]]] = {key: [] for key in summaries}
    for d in delivered:
        key = in_run.get((d.deanery, d.run_date.isoformat())) or earliest.get(d.deanery)
        if key is not None:
            delivered_for[key].append({**d.summary(), "run_date": d.run_date.isoformat()})
    result = {}
    for key, summary in summaries.items():
        names = [file["name"] for file in summary.get("files_for_partition", [])]
        still = {
            str(entry["_id"])
            for entry in deliverer.database[EXPORT_FILE].find({"_id": {"$in": names}, UNDELIVERED: True}, {"_id": 1})
        }
        result[key] = {**summary, "delivered_by_this_run": delivered_for[key], "undelivered_files": sorted(still)}
    return result


DELIVERED_TABLE_SCHEMA = TableSchema(
    columns=[
        TableColumn("file", "string", description="File name, as in ESR_EXPORT_DIR"),
        TableColumn("run_date", "string", description="The file's date (an earlier one: a backlog this run delivered)"),
        TableColumn("location", "string", description="Object key or path in ESR's drop"),
        TableColumn("bytes", "int"),
        TableColumn("sha256", "string", description="SHA-256 of the bytes delivered, as the file ledger records it"),
    ]
)


def _delivery_metadata(destination: Destination, summary: dict) -> dict[str, Any]:
    """A partition's deliveries: where this run put its files, with their checksums, and what still waits."""
    delivered = summary["delivered_by_this_run"]
    return {
        "delivery_destination": destination.describe(),
        "delivered_files": MetadataValue.table(
            records=[
                TableRecord(
                    {
                        "file": d["name"],
                        "run_date": d["run_date"],
                        "location": d["location"],
                        "bytes": d["size"],
                        "sha256": d["sha256"],
                    }
                )
                for d in delivered
            ],
            schema=DELIVERED_TABLE_SCHEMA,
        ),
        "delivered_count": len(delivered),
        "undelivered_files": ", ".join(summary["undelivered_files"]) or "none",
    }


class ResendConfig(Config):
    """Which archived export file to put into ESR's drop again."""

    file_name: str = Field(
        description="The file ESR asked for again, as the file ledger names it, e.g. DE_EOE_APP_20210731_00000001.DAT"
    )


@op(retry_policy=EXPORT_RETRY_POLICY)
def resend_export_file_to_esr(
    context: OpExecutionContext,
    config: ResendConfig,
    mongodb: MongoDBResource,
    export_directory: ExportDirectoryResource,
    delivery: DeliveryResource,
) -> dict:
    """Put the archived bytes of one export file into ESR's drop again, after checking them against the
    SHA-256 the file ledger recorded when it was written; each re-send is recorded in the ledger."""
    name = config.file_name.strip()
    try:
        parsed = parse_export_file_name(name)
    except ValueError:
        raise Failure(
            description=(
                f"file_name {shown(config.file_name)} is not an ESR export file name "
                "(DE_<DEANERY>_<APP|DNC>_<YYYYMMDD>_<8-digit number>.DAT): nothing was sent."
            ),
            allow_retries=False,
        ) from None
    (stream,) = [s for s in STREAMS if s.file_type == parsed.file_type]
    destination = _destination(delivery)
    with retrying_transient_errors(context, f"Re-sending {name}"):
        deliverer = Deliverer(mongodb.get_database(), export_directory.directory(), destination, stream.file_type)
        try:
            with destination:
                resent = deliverer.resend(name)
        except DeliveryUnavailableError as error:
            raise Failure(description=f"Re-sending {name} failed: {error}", allow_retries=True) from None
        receipt = resent.receipt
        context.log.info(
            f"Re-sent {name} to {receipt.destination} as {receipt.location} ({receipt.size} bytes, SHA-256 "
            f"{receipt.sha256[:12]}...)"
            + (
                ": it was still there with the same bytes, so nothing was overwritten; ESR can pick it up there"
                if receipt.already_there
                else ""
            )
        )
        context.add_output_metadata(
            {
                "file_name": name,
                "destination": receipt.destination,
                "location": receipt.location,
                "sha256": receipt.sha256,
                "size": receipt.size,
                "already_there": receipt.already_there,
            }
        )
        return resent.summary()


@job(
    name="resend_export_file",
    description=(
        "Put one archived ESR export file into ESR's drop again, when ESR asks for it: the file_name must be in "
        "the file ledger, and its archived bytes must match the SHA-256 recorded when it was written."
    ),
)
def resend_export_file() -> None:
    resend_export_file_to_esr()
