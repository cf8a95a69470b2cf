"""``undelivered_files_sensor``: a file written but still not in ESR's drop is announced by name.

Its records are EXPORTED, so the stale-record sensor cannot see it: ESR would simply never get it. After
the configured time (30 minutes by default) the file is announced once, again daily while it stays
undelivered, and once more when it is delivered; a catch-up run of its partition is requested, whose
delivery step sends the deanery's backlog first.
"""

import datetime as dt
from collections.abc import Sequence

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .alerts import AlertChannelsResource
from .delivery_resource import DeliveryResource
from .domain.delivery_url import DeliveryUrlError
from .domain.esr_csv import ExportFileName, parse_export_file_name
from .domain.sensor_tick import FileAnnouncements, UndeliveredAlert, UndeliveredFilesCursor, plan_file_announcements
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM
from .partitions import DEANERY_TAG, export_partition_key
from .resources import MongoDBResource, StaleRecordPolicyResource
from .sensors import deliver_alerts
from .settings import SENSOR_INTERVAL_SECONDS
from .storage.deliverer import files_undelivered_since
from .stream_definitions import EXPORT_JOBS

_JOBS = {"APP": APP_STREAM.job_name, "DNC": NOTIFICATION_STREAM.job_name}


@sensor(
    jobs=list(EXPORT_JOBS),
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Finds export files written but still not delivered to ESR's drop after the configured time (30 minutes "
        "by default); announces them by name once (again daily, and when delivered) and requests a run of each "
        "file's partition, whose delivery step sends the deanery's undelivered files first."
    ),
)
def undelivered_files_sensor(
    context: SensorEvaluationContext,
    mongodb: MongoDBResource,
    delivery: DeliveryResource,
    stale_policy: StaleRecordPolicyResource,
    alert_channels: AlertChannelsResource,
):
    now = dt.datetime.now(dt.UTC)
    cursor = UndeliveredFilesCursor.parse(context.cursor)

    started_before = now.replace(tzinfo=None) - dt.timedelta(minutes=delivery.undelivered_alert_minutes)
    overdue = files_undelivered_since(mongodb.get_database(), started_before)
    plan = plan_file_announcements(overdue, cursor.announced, now)
    channels = tuple(alert_channels.channels())
    texts = alert_texts(plan, delivery, stale_policy.ui_url)
    undelivered = deliver_alerts(
        context.log, alert_channels, [*cursor.undelivered, *(UndeliveredAlert(text, channels) for text in texts)]
    )
    # Only with an announcement (first, then daily): a destination down for days must not start a failing
    # run every hour.
    run_requests = delivery_catch_up_requests(plan.due, now)

    next_cursor = UndeliveredFilesCursor(plan.announced, undelivered).serialise()
    if run_requests:
        return SensorResult(run_requests=run_requests, cursor=next_cursor)
    return SensorResult(skip_reason=SkipReason("Every written export file is in ESR's drop"), cursor=next_cursor)


def alert_texts(plan: FileAnnouncements, delivery: DeliveryResource, ui_url: str) -> list[str]:
    """What to announce: the files newly (or a day again) overdue by name, and those delivered since."""
    try:
        where = delivery.target().describe()
    except DeliveryUrlError as error:
        where = f"a misconfigured destination ({error})"
    texts = []
    if plan.due:
        texts.append(
            "\n".join(
                [
                    f"ESR delivery: {len(plan.due)} export file(s) written more than {delivery.undelivered_alert_minutes} "
                    f"minutes ago are not in ESR's drop ({where}): {', '.join(plan.due)}.",
                    "Their records are EXPORTED and the files are archived in ESR_EXPORT_DIR; ESR does not have them.",
                    "What to do: see the failed runs' errors (README, 'When something goes wrong'); a run of each "
                    "file's partition has been requested, and its delivery step sends the deanery's undelivered files "
                    "first, oldest number first.",
                    f"Runs: {ui_url.rstrip('/')}/runs",
                ]
            )
        )
    if plan.cleared:
        texts.append(f"ESR delivery: now in ESR's drop ({where}): {', '.join(plan.cleared)}.")
    return texts


def delivery_catch_up_requests(names: Sequence[str], now: dt.datetime) -> list[RunRequest]:
    """What to run: one request per partition of the named files, whose delivery step sends its backlog."""
    hour = now.strftime("%Y-%m-%dT%H")
    partitions = sorted({(parsed.file_type, parsed.run_date, parsed.deanery) for parsed in _parsed(names)})
    return [
        RunRequest(
            # At most one request per partition per hour, even if the cursor were lost.
            run_key=f"delivery-catch-up-{_JOBS[file_type]}-{run_date.isoformat()}-{deanery}-{hour}",
            job_name=_JOBS[file_type],
            partition_key=export_partition_key(run_date, deanery),
            tags={DEANERY_TAG: deanery, "esr/trigger": "undelivered-file-catch-up"},
        )
        for file_type, run_date, deanery in partitions
    ]


def _parsed(names: Sequence[str]) -> list[ExportFileName]:
    parsed = []
    for name in names:
        try:
            parsed.append(parse_export_file_name(name))
        except ValueError:
            continue  # announced by name all the same; a run cannot be requested for it
    return parsed
