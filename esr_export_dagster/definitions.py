"""Everything the code location serves, assembled in one place. Nothing here does I/O."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import ConfigurableResource, Definitions, FilesystemIOManager, in_process_executor
from dagster_msteams import MSTeamsResource

from . import stream_definitions
from .alerts import AlertChannelsResource, EsrSlackResource
from .confirmation_sensor import esr_confirmation_alert_sensor, esr_confirmation_sensor
from .delivery_ops import resend_export_file
from .delivery_resource import DeliveryResource
from .delivery_sensor import undelivered_files_sensor
from .resources import (
    ExportDirectoryResource,
    ExporterResource,
    ExportPolicyResource,
    MongoDBResource,
    StaleRecordPolicyResource,
    WallClockResource,
)
from .sensors import export_run_failure_alert, stale_to_export_sensor
from .settings import (
    CONFIRMATION_DEADLINE_HOURS,
    DAGSTER_UI_URL,
    DELIVERY_ALERT_MINUTES,
    DELIVERY_DIR,
    DELIVERY_KNOWN_HOSTS,
    DELIVERY_S3_KMS_KEY_ID,
    DELIVERY_SSH_KEY_FILE,
    DELIVERY_URL,
    EXPORT_DIR,
    INBOUND_DIR,
    INBOUND_URL,
    MONGODB_DATABASE,
    MONGODB_URI,
    NOTIFICATION_EXPORT_TIME_UTC,
    SEQUENCE_SCOPE,
    SLACK_CHANNEL,
    SLACK_TOKEN,
    TEAMS_WEBHOOK_URL,
)


def default_resources() -> dict[str, ConfigurableResource | FilesystemIOManager]:
    """The resources from the environment (settings.py): each field is the setting's EnvVar when set, resolved
    when a run builds its resources, else the setting's default."""
    mongodb = MongoDBResource(uri=MONGODB_URI.required(), database=MONGODB_DATABASE.resource_value())
    export_directory = ExportDirectoryResource(path=EXPORT_DIR.required())
    export_policy = ExportPolicyResource(
        notification_export_time_utc=NOTIFICATION_EXPORT_TIME_UTC.resource_value(),
        sequence_scope=SEQUENCE_SCOPE.resource_value(),
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
        "stale_policy": StaleRecordPolicyResource(ui_url=DAGSTER_UI_URL.resource_value()),
        "delivery": default_delivery(),
        "alert_channels": AlertChannelsResource(
            teams=MSTeamsResource(hook_url=TEAMS_WEBHOOK_URL.required()) if TEAMS_WEBHOOK_URL.is_set else None,
            slack=EsrSlackResource(token=SLACK_TOKEN.required()) if SLACK_TOKEN.is_set else None,
            slack_channel=SLACK_CHANNEL.resource_value(),
        ),
    }


def default_delivery() -> DeliveryResource:
    """ESR's drop from the environment; S3 credentials, region and endpoint come from boto3's standard chain."""
    return DeliveryResource(
        url=DELIVERY_URL.resource_value(),
        local_folder=DELIVERY_DIR.resource_value(),
        ssh_key_file=DELIVERY_SSH_KEY_FILE.resource_value(),
        known_hosts_file=DELIVERY_KNOWN_HOSTS.resource_value(),
        s3_kms_key_id=DELIVERY_S3_KMS_KEY_ID.resource_value(),
        undelivered_alert_minutes=DELIVERY_ALERT_MINUTES.resource_int(),
        inbound_url=INBOUND_URL.resource_value(),
        inbound_local_folder=INBOUND_DIR.resource_value(),
        confirmation_deadline_hours=CONFIRMATION_DEADLINE_HOURS.resource_int(),
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
            sensors=[
                stale_to_export_sensor,
                export_run_failure_alert,
                undelivered_files_sensor,
                esr_confirmation_sensor,
                esr_confirmation_alert_sensor,
            ],
            resources=dict(resources),
            # One process per run, not one per step. A run's steps follow one another (the checks after the
            # file), so Dagster's default multiprocess executor bought no parallelism: it started a new
            # interpreter for each of a run's steps, each importing Dagster and the project (about 5 s of CPU
            # apiece, for steps that mostly take well under a second), 13 deaneries a day. Op retries, the
            # counter's pool, run retries of a killed worker and run monitoring work the same in one process.
            executor=in_process_executor,
        ),
    )


defs = build_definitions(default_resources())
