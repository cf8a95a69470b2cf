"""ESR's confirmations as assets, one per stream: ``app_esr_confirmation`` (APC files answering APP files)
and ``notification_esr_confirmation`` (DCC files answering DNC files).

``esr_confirmation_sensor`` requests one run per confirmation file found in the inbound location; the run
reads it, records ESR's outcome on every record it names and on the export file's ledger entry, and reports
the counts. Nothing personal reaches the materialization: ESR's message text stays on the records.
"""

import datetime as dt
import hashlib

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    SpecificPartitionsPartitionMapping,
    asset,
    define_asset_job,
)
from pydantic import Field

from .delivery_resource import DeliveryResource
from .domain.confirmation_file import (
    LAYOUT_ANSWERING,
    UnreadableConfirmationError,
    parse_confirmation,
    parse_confirmation_file_name,
)
from .domain.delivery_url import DeliveryUrlError
from .domain.streams import ExportStream
from .ops import EXPORT_RETRY_POLICY, retrying_transient_errors
from .resources import MongoDBResource
from .storage.confirmations import apply_confirmation
from .storage.delivery import DeliveryUnavailableError

CONFIRMATION_GROUP = "esr_confirmations"
# A run answers one export file, but which one is found from the file's references at run time, so the asset
# declares no partition of the file asset in advance; the lineage edge stays. Left to Dagster's default (all
# partitions), every confirmation run listed the whole export grid (25,740 (date, deanery) keys in December
# 2026 from the default first date, 13 more a day) for an input data version that Dagster then discards for
# depending on 100 partitions or more: about 0.6 s of CPU a run, growing with the grid. (The UI shows this
# mapping as "depends on the following upstream partitions: []".)
NO_EXPORT_FILE_PARTITION_IN_ADVANCE = SpecificPartitionsPartitionMapping([])


class ConfirmationFileConfig(Config):
    """The confirmation file a run reads, as the sensor found it."""

    file_name: str = Field(description="The APC or DCC file's name in the inbound location.")
    sha256: str = Field(description="The file's SHA-256 when the sensor listed it; other bytes are refused.")


def build_confirmation_asset(stream: ExportStream, export_file: AssetsDefinition) -> AssetsDefinition:
    layout = LAYOUT_ANSWERING[stream.file_type]

    @asset(
        name=stream.confirmation_asset_name,
        group_name=CONFIRMATION_GROUP,
        deps=[AssetDep(export_file, partition_mapping=NO_EXPORT_FILE_PARTITION_IN_ADVANCE)],
        retry_policy=EXPORT_RETRY_POLICY,
        description=(
            f"ESR's {layout.file_type} files: its answer to each {stream.file_type} file, per {stream.record_noun}. "
            f"A file in ESR's drop is not a trainee in ESR: this records, on each record, whether ESR loaded it "
            f"(esrOutcome: LOADED, LOADED_WITH_WARNINGS or REJECTED, with ESR's ids and message), and on the export "
            "file's ledger entry which confirmation answered it. One materialization per confirmation file; the "
            "export file it answers is found from the references it carries. Rejections and files ESR leaves "
            "unanswered are alerted by esr_confirmation_alert_sensor (README, 'Confirmations from ESR')."
        ),
    )
    def esr_confirmation(
        context: AssetExecutionContext,
        config: ConfirmationFileConfig,
        mongodb: MongoDBResource,
        delivery: DeliveryResource,
    ) -> MaterializeResult:
        name = config.file_name.strip()
        try:
            file = parse_confirmation_file_name(name)
        except ValueError as error:
            raise Failure(description=f"file_name: {error}", allow_retries=False) from None
        if file.layout is not layout:
            raise Failure(description=f"{name} is not a {layout.file_type} file", allow_retries=False)
        try:
            inbound = delivery.inbound()
        except DeliveryUrlError as error:
            raise Failure(description=f"The inbound location is misconfigured: {error}", allow_retries=False) from None
        with retrying_transient_errors(context, f"Reading {name}"):
            try:
                with inbound:
                    content = inbound.read(name)
            except DeliveryUnavailableError as error:
                raise Failure(description=str(error), allow_retries=True) from None
            sha256 = hashlib.sha256(content).hexdigest()
            if sha256 != config.sha256:
                raise Failure(
                    description=(
                        f"{name} changed since the sensor listed it (SHA-256 {sha256[:12]}..., expected "
                        f"{config.sha256[:12]}...): nothing was applied; the sensor's next tick requests a run for "
                        "the new bytes."
                    ),
                    allow_retries=False,
                )
            try:
                parsed = parse_confirmation(name, content)
            except UnreadableConfirmationError as error:
                raise Failure(description=f"{name} cannot be read: {error}", allow_retries=False) from None
            result = apply_confirmation(mongodb.get_database(), stream, parsed, sha256, dt.datetime.now(dt.UTC))
        counts = result.counts
        context.log.info(
            f"{result.deanery}: {name} answers {result.export_file or 'no export file'}: loaded {counts['loaded']}, "
            f"with warnings {counts['warnings']}, rejected {counts['failed']}, unmatched {counts['unmatched']}, "
            f"quarantined {counts['quarantined']}"
        )
        for line in result.quarantined:
            context.log.warning(f"{name} line {line['line']} quarantined: {line['reason']}")
        for line in result.unmatched:
            context.log.warning(
                f"{name} line {line['line']}: reference {line['reference']} unmatched: {line['reason']}"
            )
        return MaterializeResult(
            metadata={
                "confirmation_file": name,
                "sha256": sha256,
                "deanery": result.deanery,
                "export_file_answered": result.export_file or "none",
                "loaded": counts["loaded"],
                "warnings": counts["warnings"],
                "failed": counts["failed"],
                "unmatched": counts["unmatched"],
                "quarantined": counts["quarantined"],
                f"rejected_{stream.reference_field}s": ", ".join(str(r["reference"]) for r in result.rejections)
                or "none",
                "unmatched_lines": MetadataValue.json(result.unmatched),
                "quarantined_lines": MetadataValue.json(result.quarantined),
            }
        )

    return esr_confirmation


def build_confirmation_job(stream: ExportStream, confirmation: AssetsDefinition):
    """The job esr_confirmation_sensor launches for each new confirmation file of the stream."""
    layout = LAYOUT_ANSWERING[stream.file_type]
    return define_asset_job(
        name=stream.confirmation_job_name,
        description=(
            f"Read one {layout.file_type} file from ESR's inbound location and record each {stream.record_noun}'s "
            "outcome."
        ),
        selection=[confirmation],
    )
