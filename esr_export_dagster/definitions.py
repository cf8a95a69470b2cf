"""Everything the code location serves, assembled in one place. Nothing here does I/O."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource, Definitions, EnvVar, FilesystemIOManager
from dagster_msteams import MSTeamsResource

from . import stream_definitions
from .alerts import AlertChannelsResource, EsrSlackResource
from .delivery_ops import resend_export_file
from .delivery_resource import DEFAULT_LOCAL_DROP, DEFAULT_UNDELIVERED_ALERT_MINUTES, DeliveryResource
from .delivery_sensor import undelivered_files_sensor
from .resources import (
    ExportDirectoryResource,
    ExporterResource,
    ExportPolicyResource,
    MongoDBResource,
    StaleRecordPolicyResource,
    WallClockResource,
)
from .schedules import NOTIFICATION_EXPORT_TIME_VARIABLE
from .sensors import export_run_failure_alert, stale_to_export_sensor


def _env_or_default(name: str, default: str) -> EnvVar | str:
    """An optional setting: read from the environment at run time when set, else the default."""
    return EnvVar(name) if name in os.environ else default


def default_resources() -> dict[str, ConfigurableResource | FilesystemIOManager]:
    mongodb = MongoDBResource(
        uri=EnvVar("ESR_MONGODB_URI"),
        database=_env_or_default("ESR_MONGODB_DATABASE", "esr_export"),
    )
    export_directory = ExportDirectoryResource(path=EnvVar("ESR_EXPORT_DIR"))
    export_policy = ExportPolicyResource(
        notification_export_time_utc=_env_or_default(NOTIFICATION_EXPORT_TIME_VARIABLE, "14:00"),
    )
    return {
        "mongodb": mongodb,
        "export_directory": export_directory,
        "export_policy": export_policy,
        "exporter": ExporterResource(mongodb=mongodb, export_directory=export_directory, export_policy=export_policy),
        # Dagster's stock IO manager, for what one op hands the next within a run (batch outcomes, file
        # numbers, per-partition counts: ids and counts, no personal data). No asset stores a value: both
        # report their partitions as materialization metadata.
        "io_manager": FilesystemIOManager(),
        "wall_clock": WallClockResource(),
        "stale_policy": StaleRecordPolicyResource(
            ui_url=_env_or_default("ESR_DAGSTER_UI_URL", "http://127.0.0.1:3000"),
        ),
        "delivery": default_delivery(),
        "alert_channels": AlertChannelsResource(
            teams=MSTeamsResource(hook_url=EnvVar("ESR_TEAMS_WEBHOOK_URL"))
            if "ESR_TEAMS_WEBHOOK_URL" in os.environ
            else None,
            slack=EsrSlackResource(token=EnvVar("ESR_SLACK_TOKEN")) if "ESR_SLACK_TOKEN" in os.environ else None,
            slack_channel=_env_or_default("ESR_SLACK_CHANNEL", "") or None,
        ),
    }


def default_delivery() -> DeliveryResource:
    """ESR's drop from the environment; S3 credentials, region and endpoint come from boto3's standard chain."""

    def optional(name: str) -> EnvVar | None:
        return EnvVar(name) if os.environ.get(name) else None

    return DeliveryResource(
        url=_env_or_default("ESR_DELIVERY_URL", ""),
        local_folder=_env_or_default("ESR_DELIVERY_DIR", DEFAULT_LOCAL_DROP),
        ssh_key_file=optional("ESR_DELIVERY_SSH_KEY_FILE"),
        known_hosts_file=optional("ESR_DELIVERY_KNOWN_HOSTS"),
        s3_kms_key_id=optional("ESR_DELIVERY_S3_KMS_KEY_ID"),
        undelivered_alert_minutes=EnvVar.int("ESR_DELIVERY_ALERT_MINUTES")
        if os.environ.get("ESR_DELIVERY_ALERT_MINUTES")
        else DEFAULT_UNDELIVERED_ALERT_MINUTES,
    )


def build_definitions(resources: Mapping[str, ConfigurableResource | FilesystemIOManager]) -> Definitions:
    """The code location's contents with the given resources (tests point them at their own server)."""
    # The streams' Definitions are reached through their module, not imported: Dagster refuses a module
    # with more than one Definitions object at its top level, and ``defs`` must be the only one here.
    return Definitions.merge(
        stream_definitions.APP_EXPORT,
        stream_definitions.NOTIFICATION_EXPORT,
        Definitions(
            jobs=[resend_export_file],
            sensors=[stale_to_export_sensor, export_run_failure_alert, undelivered_files_sensor],
            resources=dict(resources),
        ),
    )


defs = build_definitions(default_resources())
