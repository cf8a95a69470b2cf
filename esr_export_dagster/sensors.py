"""Sensors that make a stuck export impossible to miss.

In 2021 records sat TO_EXPORT for days before a user noticed on Teams. ``stale_to_export_sensor`` looks every
15 minutes, announces what is stuck in plain words, and requests the runs that would still export it;
``export_run_failure_alert`` announces every failed export run.
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from dagster import (
    DagsterLogManager,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from pymongo.database import Database

from .alerts import AlertChannelsResource
from .domain.sensor_tick import StaleSensorCursor, UndeliveredAlert, tick_outcome
from .domain.stale_records import (
    AT_RISK,
    LATE_NOTIFICATION,
    OVERDUE,
    UNDATED,
    UNDATED_NOTIFICATION,
    Finding,
    StalePolicy,
    classify,
    classify_notifications,
    plan_announcements,
)
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM
from .partitions import DEANERY_TAG, export_partition_key
from .resources import ExportPolicyResource, MongoDBResource, StaleRecordPolicyResource
from .settings import SENSOR_INTERVAL_SECONDS
from .storage.stale_query import pending_notifications, pending_records
from .stream_definitions import EXPORT_JOBS

# Which job's partition a catch-up run for a finding's category re-materializes.
_CATCH_UP_JOBS = {
    OVERDUE: APP_STREAM.job_name,
    AT_RISK: APP_STREAM.job_name,
    LATE_NOTIFICATION: NOTIFICATION_STREAM.job_name,
    # Today's run sets undated records INVALID_DATA, naming the field: they stop waiting unseen.
    UNDATED: APP_STREAM.job_name,
    UNDATED_NOTIFICATION: NOTIFICATION_STREAM.job_name,
}


@sensor(
    jobs=list(EXPORT_JOBS),
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Finds applicant records still TO_EXPORT that are overdue, at risk of missing ESR's window, or past "
        "their start date, notifications still TO_EXPORT a day after their creation and after the DNC export "
        "that should have carried them, and records of no known deanery; alerts the support "
        "team once (again daily while unresolved, and when cleared) and requests catch-up runs for the "
        "partitions that would still export them. Each tick states its outcome in one line. What to do: "
        "overdue or late notification: check the catch-up run (tag esr/trigger=stale-record-catch-up) "
        "succeeded; at risk: materialize the linked partition if no catch-up run did; past start: the runs "
        "withhold them, tell the trust to hire by hand and correct the status in TIS (export_past_start: true "
        "only if the trust did not hire by hand); unknown deanery: correct the deanery in TIS."
    ),
)
def stale_to_export_sensor(
    context: SensorEvaluationContext,
    mongodb: MongoDBResource,
    export_policy: ExportPolicyResource,
    stale_policy: StaleRecordPolicyResource,
    alert_channels: AlertChannelsResource,
):
    now = dt.datetime.now(dt.UTC)
    policy = stale_policy.policy(export_policy)
    cursor = StaleSensorCursor.parse(context.cursor)

    findings = stuck_records(mongodb.get_database(), now, policy)
    announcements, announced = plan_announcements(findings, cursor.announced, now, stale_policy.ui_url, policy)
    channels = tuple(alert_channels.channels())
    undelivered = deliver_alerts(
        context.log, alert_channels, [*cursor.undelivered, *(UndeliveredAlert(a.text, channels) for a in announcements)]
    )
    run_requests = catch_up_requests(findings, now) if stale_policy.catch_up_runs else []

    next_cursor = StaleSensorCursor(announced, undelivered).serialise()
    outcome = tick_outcome(findings, announcements, len(undelivered), len(run_requests))
    # The tick's page shows a skip reason but no text beside requested runs: the log carries it in both cases.
    context.log.info(outcome)
    if run_requests:
        return SensorResult(run_requests=run_requests, cursor=next_cursor)
    return SensorResult(skip_reason=SkipReason(outcome), cursor=next_cursor)


def stuck_records(database: Database, now: dt.datetime, policy: StalePolicy) -> list[Finding]:
    """What is pending and in trouble: TO_EXPORT records and notifications, classified per deanery.

    Both reads are an equality on ``status``, served by the index the export builds when it prepares its
    collections (``ensure_indexes``); the sensor itself builds nothing, so a failing index build can never
    silence its alerts.
    """
    findings = classify(pending_records(database, starting_before=now.date() + policy.window.upper), now, policy)
    late_before = now.astimezone(dt.UTC).replace(tzinfo=None) - policy.notification_late_after
    return findings + classify_notifications(pending_notifications(database, created_before=late_before), now, policy)


def deliver_alerts(
    log: DagsterLogManager, alert_channels: AlertChannelsResource, alerts: Sequence[UndeliveredAlert]
) -> tuple[UndeliveredAlert, ...]:
    """Post each alert on its channels and log it; returns what a channel did not take, for the next tick."""
    undelivered = []
    for alert in alerts:
        log.warning(alert.text)
        failed = alert_channels.deliver(alert.text, list(alert.channels))
        if failed:
            log.error(f"Alert delivery failed on {', '.join(failed)}; it is tried again next tick")
            undelivered.append(UndeliveredAlert(alert.text, tuple(failed)))
    return tuple(undelivered)


def catch_up_requests(findings: Sequence[Finding], now: dt.datetime) -> list[RunRequest]:
    """What to run: one request per partition that would still export a finding's records."""
    hour = now.strftime("%Y-%m-%dT%H")
    partitions = sorted(
        {
            (_CATCH_UP_JOBS[finding.category], run_date, finding.deanery)
            for finding in findings
            if finding.category in _CATCH_UP_JOBS
            for run_date in finding.catch_up_dates
        }
    )
    return [
        RunRequest(
            # At most one request per partition per hour, even if the cursor were lost.
            run_key=f"catch-up-{job}-{run_date.isoformat()}-{deanery}-{hour}",
            job_name=job,
            partition_key=export_partition_key(run_date, deanery),
            tags={DEANERY_TAG: deanery, "esr/trigger": "stale-record-catch-up"},
        )
        for job, run_date, deanery in partitions
    ]


@run_failure_sensor(
    monitored_jobs=list(EXPORT_JOBS),
    default_status=DefaultSensorStatus.RUNNING,
    description="Announces every failed ESR export run on the alert channels, with a link to the run.",
)
def export_run_failure_alert(
    context: RunFailureSensorContext,
    alert_channels: AlertChannelsResource,
    stale_policy: StaleRecordPolicyResource,
):
    run = context.dagster_run
    failed_steps = context.get_step_failure_events()
    errors = sorted({f"{event.step_key}: {_failure_text(event.step_failure_data)}" for event in failed_steps})
    partition = run.tags.get("dagster/partition", "none")
    text = "\n".join(
        [
            f"ESR export run failed: job {run.job_name}, partition {partition}.",
            f"Failed step(s): {'; '.join(errors) or 'the run failed before any step ran'}.",
            f"Run: {stale_policy.ui_url.rstrip('/')}/runs/{run.run_id}",
            "What to do: fix the cause the error names (README, 'When something goes wrong'), then "
            "re-materialize the partition; its next run first finishes any file this run left unfinished, "
            "under the same name and number.",
        ]
    )
    context.log.warning(text)
    failed = alert_channels.deliver(text, alert_channels.channels())
    if failed:
        raise RuntimeError(f"Could not deliver the run-failure alert on {', '.join(failed)}")


def _failure_text(data: Any) -> str:
    """The export's own description of a failure (written to be safe to show), else the error's class only:
    another exception's message may quote a value from a record."""
    failure = getattr(data, "user_failure_data", None)
    if failure is not None and failure.description:
        return failure.description
    return data.error.cls_name if data.error is not None else "unknown error"
