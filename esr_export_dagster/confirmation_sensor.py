"""Two sensors close the loop with ESR.

``esr_confirmation_sensor`` finds new APC/DCC files in the inbound location and requests one run of the
stream's confirmation asset per file. Its run key is the file's name and SHA-256, so a file is read once
however often it is listed, even if the cursor were lost. A file that is not text at all is moved aside
(or, where the location is read-only, marked) and recorded, and the sensor goes on with the next.

``esr_confirmation_alert_sensor`` announces, through the alert channels: ESR's rejections (placement or
notification id, deanery, export file, message type; once per rejection, one alert per deanery and day),
unreadable confirmation files, and export files ESR has left unanswered for longer than
ESR_CONFIRMATION_DEADLINE_HOURS (by name, once and then daily). Never ESR's message text: it can hold names.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
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
from .confirmation_assets import ConfirmationFileConfig
from .confirmation_checks import confirmation_deadline, evaluations_for_files
from .delivery_resource import DeliveryResource
from .domain.confirmation_file import (
    APC_FILE_TYPE,
    LAYOUT_ANSWERING,
    UnreadableConfirmationError,
    parse_confirmation,
    parse_confirmation_file_name,
)
from .domain.delivery_url import DeliveryUrlError
from .domain.streams import STREAMS
from .resources import MongoDBResource, StaleRecordPolicyResource
from .storage.confirmations import already_read, mark_alerted, record_unreadable, unalerted
from .storage.delivery import DeliveryConfigurationError, DeliveryUnavailableError
from .storage.ledger import unconfirmed_delivered_files
from .stream_definitions import CONFIRMATION_JOBS

CONFIRMATION_SENSOR_INTERVAL_SECONDS = 300
_REANNOUNCE_AFTER = dt.timedelta(days=1)
# The export stream whose files each confirmation file type answers (APC: APP, DCC: DNC).
_STREAM_ANSWERED_BY = {LAYOUT_ANSWERING[stream.file_type].file_type: stream for stream in STREAMS}


@dataclass
class InboundCursor:
    """The files already handed to a run (or marked unreadable): name -> SHA-256."""

    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def loads(cls, raw: str | None) -> "InboundCursor":
        return cls(**json.loads(raw)) if raw else cls()

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@sensor(
    jobs=list(CONFIRMATION_JOBS),
    minimum_interval_seconds=CONFIRMATION_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Finds ESR's confirmation files (APC for APP files, DCC for DNC files) in the inbound location "
        "(ESR_INBOUND_URL) and requests one run per new file, keyed by its name and SHA-256; a file that is "
        "not text is moved aside (or marked) and alerted."
    ),
)
def esr_confirmation_sensor(context: SensorEvaluationContext, mongodb: MongoDBResource, delivery: DeliveryResource):
    cursor = InboundCursor.loads(context.cursor)
    database = mongodb.get_database()
    run_requests = []
    problems = []
    try:
        inbound = delivery.inbound()
        with inbound:
            listed = inbound.names()
            # Only names still there are remembered, so the cursor does not grow with every file ever read;
            # the run key (name and SHA-256) still stops a second read of a file listed again.
            cursor.seen = {name: sha for name, sha in cursor.seen.items() if name in listed}
            for name in listed:
                if name in cursor.seen:
                    continue
                try:
                    content = inbound.read(name)
                except DeliveryUnavailableError as error:
                    problems.append(str(error))
                    continue  # tried again next tick; the other files go on
                sha256 = hashlib.sha256(content).hexdigest()
                if already_read(database, name, sha256):
                    cursor.seen[name] = sha256
                    continue
                file = parse_confirmation_file_name(name)
                try:
                    parse_confirmation(name, content)
                except UnreadableConfirmationError as error:
                    try:
                        moved_to = inbound.move_aside(name)
                    except DeliveryUnavailableError:
                        moved_to = None
                    record_unreadable(
                        database, name, file.deanery, file.file_type, sha256, str(error), moved_to, _now()
                    )
                    context.log.warning(
                        f"{name} cannot be read ({error}): "
                        + (f"moved to {moved_to}" if moved_to else "marked in esrConfirmation (left in place)")
                    )
                    cursor.seen[name] = sha256
                    continue
                stream = _STREAM_ANSWERED_BY[file.file_type]
                run_requests.append(
                    RunRequest(
                        run_key=f"{name}:{sha256}",
                        job_name=stream.confirmation_job_name,
                        run_config={
                            "ops": {
                                stream.confirmation_asset_name: {
                                    "config": ConfirmationFileConfig(file_name=name, sha256=sha256).model_dump()
                                }
                            }
                        },
                        # Not esr/deanery: that tag limits export runs to one per deanery, and a confirmation
                        # must not wait behind an export.
                        tags={"esr/confirmation-file": name, "esr/confirmation-deanery": file.deanery},
                    )
                )
                cursor.seen[name] = sha256
    except (DeliveryUrlError, DeliveryConfigurationError, DeliveryUnavailableError) as error:
        problems.append(str(error))
    for problem in problems:
        context.log.error(f"ESR confirmations: {problem}")
    if run_requests:
        return SensorResult(run_requests=run_requests, cursor=cursor.dumps())
    reason = "; ".join(problems) if problems else "No new confirmation file from ESR"
    return SensorResult(skip_reason=SkipReason(reason), cursor=cursor.dumps())


@dataclass
class AlertCursor:
    """Unanswered export files announced (name -> when), and alerts a channel failed to take."""

    unanswered_announced: dict[str, str] = field(default_factory=dict)
    pending_alerts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def loads(cls, raw: str | None) -> "AlertCursor":
        return cls(**json.loads(raw)) if raw else cls()

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@sensor(
    minimum_interval_seconds=CONFIRMATION_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Alerts on ESR's answers: rejected records (by placement or notification id, deanery, export file and "
        "message type, one alert per deanery and day), unreadable confirmation files, and export files with no "
        "confirmation after ESR_CONFIRMATION_DEADLINE_HOURS (30 by default), once and then daily."
    ),
)
def esr_confirmation_alert_sensor(
    context: SensorEvaluationContext,
    mongodb: MongoDBResource,
    delivery: DeliveryResource,
    stale_policy: StaleRecordPolicyResource,
    alert_channels: AlertChannelsResource,
):
    now = _now()
    database = mongodb.get_database()
    cursor = AlertCursor.loads(context.cursor)
    ui = stale_policy.ui_url.rstrip("/")
    documents = unalerted(database)
    texts = confirmation_alert_texts(documents, ui)
    deadline = delivery.confirmation_deadline_hours
    delivered_before = confirmation_deadline(delivery, now)
    overdue = [str(entry["_id"]) for entry in unconfirmed_delivered_files(database, delivered_before)]
    announced = cursor.unanswered_announced
    cursor_before = set(announced)
    due = [
        name
        for name in overdue
        if name not in announced or now - dt.datetime.fromisoformat(announced[name]) >= _REANNOUNCE_AFTER
    ]
    if due:
        texts.append(
            "\n".join(
                [
                    f"ESR confirmations: no confirmation from ESR for {len(due)} export file(s) delivered more than "
                    f"{deadline} hours ago: {', '.join(due)}.",
                    "ESR may not have loaded them. What to do: check the inbound location (ESR_INBOUND_URL) and "
                    "ESR's drop; ask ESR whether the files were received, and re-send with the resend_export_file "
                    "job if they ask (README, 'Confirmations from ESR').",
                    f"Checks: {ui}/asset-groups (esr_confirmed_every_file)",
                ]
            )
        )
        announced.update({name: now.isoformat() for name in due})
    cleared = [name for name in announced if name not in overdue]
    for name in cleared:
        del announced[name]
    # The partitions' check follows: failed when a file passes the deadline, passed again once answered.
    evaluations = evaluations_for_files(
        database, [name for name in due if name not in cursor_before] + cleared, delivered_before
    )
    channels = alert_channels.channels()
    queue = cursor.pending_alerts + [{"text": text, "channels": channels} for text in texts]
    cursor.pending_alerts = []
    for alert in queue:
        context.log.warning(alert["text"])
        failed = alert_channels.deliver(alert["text"], alert["channels"])
        if failed:
            context.log.error(f"Alert delivery failed on {', '.join(failed)}; it is tried again next tick")
            cursor.pending_alerts.append({"text": alert["text"], "channels": failed})
    # Recorded once queued: a channel that fails keeps the alert in the cursor, never alerts it twice.
    mark_alerted(database, [str(document["_id"]) for document in documents], now)
    if queue or evaluations:
        return SensorResult(cursor=cursor.dumps(), asset_events=evaluations)
    return SensorResult(skip_reason=SkipReason("Nothing to alert about ESR's confirmations"), cursor=cursor.dumps())


def confirmation_alert_texts(documents: list[Mapping[str, Any]], ui: str) -> list[str]:
    """One alert per deanery and day for rejections, one per unreadable file; ids, names and codes only."""
    rejections: dict[tuple[str, str], list[dict[str, Any]]] = {}
    texts = []
    for document in documents:
        if document.get("state") == "UNREADABLE":
            where = (
                f"moved to {document['movedTo']}"
                if document.get("movedTo")
                else "left in place (read-only location) and marked"
            )
            texts.append(
                f"ESR confirmations: {document['name']} ({document.get('deanery')}) cannot be read: "
                f"{document.get('reason')}. It was {where}; nothing in it was applied. Ask ESR to send it again."
            )
            continue
        day = str(document.get("receivedAt", ""))[:10]
        rejections.setdefault((str(document.get("deanery")), day), []).extend(
            {**rejection, "confirmation": document["name"], "fileType": document.get("fileType")}
            for rejection in document.get("rejections", [])
        )
    for (deanery, day), rejected in sorted(rejections.items()):
        lines = [
            f"ESR rejected {len(rejected)} record(s) of {deanery} (confirmations of {day}):",
            *(
                f"- {_noun(r)} {r['reference']} in "
                f"{r['exportFile']} ({r['messageType']}), answered by {r['confirmation']}"
                for r in sorted(rejected, key=lambda r: (str(r["exportFile"]), r["reference"]))
            ),
            "ESR did not load them: the trainee is not in ESR. ESR's messages are on each record's esrOutcome "
            "in MongoDB. What to do: correct the data in TIS (the record is exported again) or with ESR "
            "(README, 'Confirmations from ESR').",
            f"Runs: {ui}/runs",
        ]
        texts.append("\n".join(lines))
    return texts


def _noun(rejection: Mapping[str, Any]) -> str:
    return "placement" if rejection.get("fileType") == APC_FILE_TYPE else "notification"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
