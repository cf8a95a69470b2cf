"""``undelivered_files_sensor``: a file written but still not in ESR's drop is announced by name.

Its records are EXPORTED, so the stale-record sensor cannot see it: ESR would simply never get it. After
the configured time (30 minutes by default) the file is announced once, again daily while it stays
undelivered, and once more when it is delivered; a catch-up run of its partition is requested, whose
delivery step sends the deanery's backlog first.
"""

import datetime as dt
import json
from typing import Any

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
from .domain.esr_csv import parse_export_file_name
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM
from .partitions import DEANERY_TAG, export_partition_key
from .resources import MongoDBResource, StaleRecordPolicyResource
from .sensors import STALE_SENSOR_INTERVAL_SECONDS
from .storage.collections import EXPORT_FILE
from .storage.deliverer import UNDELIVERED
from .stream_definitions import EXPORT_JOBS

_REANNOUNCE_AFTER = dt.timedelta(days=1)
_JOBS = {"APP": APP_STREAM.job_name, "DNC": NOTIFICATION_STREAM.job_name}


@sensor(
    jobs=list(EXPORT_JOBS),
    minimum_interval_seconds=STALE_SENSOR_INTERVAL_SECONDS,
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
    cutoff = now.replace(tzinfo=None) - dt.timedelta(minutes=delivery.undelivered_alert_minutes)
    try:
        where = delivery.target().describe()
    except DeliveryUrlError as error:
        where = f"a misconfigured destination ({error})"
    overdue = sorted(
        str(entry["_id"])
        for entry in mongodb.get_database()[EXPORT_FILE].find(
            {UNDELIVERED: True, "startedAt": {"$lt": cutoff}}, {"_id": 1}
        )
    )
    cursor = _load_cursor(context.cursor)
    announced: dict[str, str] = cursor["announced"]
    due = [
        name
        for name in overdue
        if name not in announced or now - dt.datetime.fromisoformat(announced[name]) >= _REANNOUNCE_AFTER
    ]
    cleared = sorted(name for name in announced if name not in overdue)
    texts = []
    if due:
        texts.append(
            "\n".join(
                [
                    f"ESR delivery: {len(due)} export file(s) written more than {delivery.undelivered_alert_minutes} "
                    f"minutes ago are not in ESR's drop ({where}): {', '.join(due)}.",
                    "Their records are EXPORTED and the files are archived in ESR_EXPORT_DIR; ESR does not have them.",
                    "What to do: see the failed runs' errors (README, 'When something goes wrong'); a run of each "
                    "file's partition has been requested, and its delivery step sends the deanery's undelivered files "
                    "first, oldest number first.",
                    f"Runs: {stale_policy.ui_url.rstrip('/')}/runs",
                ]
            )
        )
        announced.update({name: now.isoformat() for name in due})
    if cleared:
        texts.append(f"ESR delivery: now in ESR's drop ({where}): {', '.join(cleared)}.")
        for name in cleared:
            del announced[name]

    channels = alert_channels.channels()
    queue = cursor["undelivered_alerts"] + [{"text": text, "channels": channels} for text in texts]
    cursor["undelivered_alerts"] = []
    for alert in queue:
        context.log.warning(alert["text"])
        failed = alert_channels.deliver(alert["text"], alert["channels"])
        if failed:
            context.log.error(f"Alert delivery failed on {', '.join(failed)}; it is tried again next tick")
            cursor["undelivered_alerts"].append({"text": alert["text"], "channels": failed})

    hour = now.strftime("%Y-%m-%dT%H")
    # Only with an announcement (first, then daily): a destination down for days must not start a failing
    # run every hour.
    partitions = sorted({(parsed.file_type, parsed.run_date, parsed.deanery) for parsed in _parsed(due)})
    run_requests = [
        RunRequest(
            # At most one request per partition per hour, even if the cursor were lost.
            run_key=f"delivery-catch-up-{_JOBS[file_type]}-{run_date.isoformat()}-{deanery}-{hour}",
            job_name=_JOBS[file_type],
            partition_key=export_partition_key(run_date, deanery),
            tags={DEANERY_TAG: deanery, "esr/trigger": "undelivered-file-catch-up"},
        )
        for file_type, run_date, deanery in partitions
    ]
    serialised = json.dumps(cursor, sort_keys=True)
    if run_requests:
        return SensorResult(run_requests=run_requests, cursor=serialised)
    return SensorResult(skip_reason=SkipReason("Every written export file is in ESR's drop"), cursor=serialised)


def _parsed(names: list[str]) -> list[Any]:
    parsed = []
    for name in names:
        try:
            parsed.append(parse_export_file_name(name))
        except ValueError:
            continue  # announced by name all the same; a run cannot be requested for it
    return parsed


def _load_cursor(raw: str | None) -> dict[str, Any]:
    cursor = json.loads(raw) if raw else {}
    return {"announced": cursor.get("announced", {}), "undelivered_alerts": cursor.get("undelivered_alerts", [])}
