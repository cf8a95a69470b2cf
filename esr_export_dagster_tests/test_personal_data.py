"""No personal value ever reaches logs, Dagster metadata, stored selections, alerts or error messages, nor\nanything recorded from ESR's confirmations outside the record's own esrOutcome."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from dagster import serialize_value

from esr_export_dagster.alerts import AlertChannelsResource, EsrSlackResource
from esr_export_dagster.confirmation_sensor import esr_confirmation_alert_sensor, esr_confirmation_sensor
from esr_export_dagster.delivery_resource import DeliveryResource
from esr_export_dagster.domain.confirmation_file import parse_confirmation, render_confirmation_file
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.local import esr_standin
from esr_export_dagster.local.demo_data import demo_notifications, demo_records
from esr_export_dagster.storage.collections import ESR_CONFIRMATION, EXPORT_FILE

from .alert_servers import RecordingServer
from .conftest import each_stream

pytestmark = [pytest.mark.integration, each_stream]

RUN_DATE = dt.date(2021, 7, 31)
PERSONAL_FIELDS = (
    "lastName",
    "firstName",
    "middleNames",
    "previousLastName",
    "applicantEmailAddress",
    "homeTel",
    "mobileTel",
    "ukNino",
    "nationalTrainingNumber",
    "contactLastName",
    "contactFirstName",
    "contactHomePhone",
)


NOTIFICATION_PERSONAL_FIELDS = tuple(
    f"{who}{what}"
    for who in ("currentTrainee", "nextAppointmentTrainee", "withdrawnTrainee")
    for what in ("FirstName", "LastName", "GmcNumber", "EmailAddress")
)


def notification_personal_values(records: Iterable[dict[str, Any]]) -> set[str]:
    return {
        str(record[f]) for record in records for f in NOTIFICATION_PERSONAL_FIELDS if len(str(record.get(f) or "")) >= 4
    }


def personal_values(records: Iterable[dict[str, Any]]) -> set[str]:
    values: set[str] = set()
    for record in records:
        applicant = record["applicant"]
        values.update(str(applicant[f]) for f in PERSONAL_FIELDS if len(str(applicant.get(f) or "")) >= 4)
        values.update({applicant["address"]["address1"], applicant["address"]["postcode"]})
        values.update(body["regNumber"] for body in applicant["professionalBodies"])
        if "dob" in applicant:
            values.update({applicant["dob"].date().isoformat(), applicant["dob"].strftime("%d/%m/%Y")})
    return values


def test_a_full_days_export_leaks_no_personal_value(harness, caplog, capfd):
    if harness.stream is APP_STREAM:
        records = demo_records(RUN_DATE)
        secrets = personal_values(records)
    else:
        records = demo_notifications(RUN_DATE)
        secrets = notification_personal_values(records)
    harness.records.insert_many(records)
    assert len(secrets) > 200

    caplog.set_level(logging.DEBUG)
    results = [harness.run(RUN_DATE, deanery) for deanery in DEANERIES]

    assert all(result.success for result in results)
    exported_text = "".join(p.read_text() for p in harness.export_dir.glob("*.DAT"))
    assert any(_appears(secret, exported_text) for secret in secrets)  # the files do carry them, as they must
    event_log = [serialize_value(entry) for r in results for entry in harness.instance.all_logs(r.run_id)]
    captured = capfd.readouterr()
    stored_outputs = _stored_outputs(harness)
    outputs = [serialize_value(r.asset_value(harness.file_asset_key)) for r in results]
    haystacks = {
        "dagster event log": "\n".join(event_log),
        "python logging": "\n".join(record.getMessage() for record in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "stored op outputs": "\n".join(stored_outputs),
        "asset outputs": "\n".join(outputs),
    }
    assert stored_outputs, "the run's op outputs were not found in Dagster's storage"
    for where, text in haystacks.items():
        leaked = sorted(secret for secret in secrets if _appears(secret, text))
        assert not leaked, f"personal values in the {where}: {len(leaked)} found"


def test_reading_esrs_confirmations_leaks_no_personal_value(harness, caplog, capfd, tmp_path):
    """ESR's message text can quote the trainee: it is kept on the record's esrOutcome and nowhere else."""
    deaneries = ("EMD", "LDN")  # the stand-in rejects a record of EMD in both streams
    if harness.stream is APP_STREAM:
        records = [r for r in demo_records(RUN_DATE) if r["deanery"] in deaneries]
        secrets = personal_values(records)
        quoted = {r["placementId"]: (r["applicant"]["lastName"], r["applicant"]["ukNino"]) for r in records}
    else:
        records = [r for r in demo_notifications(RUN_DATE) if r["deanery"] in deaneries]
        secrets = notification_personal_values(records)
        quoted = {
            r["notificationId"]: (
                r.get("nextAppointmentTraineeLastName") or "",
                r.get("nextAppointmentTraineeGmcNumber") or "",
            )
            for r in records
        }
    harness.records.insert_many(records)
    inbound = tmp_path / "esr-inbound"
    harness.delivery = DeliveryResource(local_folder=str(harness.drop_dir), inbound_local_folder=str(inbound))
    assert all(harness.run(RUN_DATE, deanery).success for deanery in deaneries)
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()
    for path in sorted(harness.drop_dir.glob("DE_*.DAT")):
        name, content = esr_standin.answer(path.name, path.read_bytes(), 70_001 + len(list(inbound.glob("*"))))
        # ESR quoting the trainee in every message, as its free text may.
        parsed = parse_confirmation(name, content)
        quoting = [
            dataclasses.replace(line, message_text="Applicant {} {} already exists".format(*quoted[line.reference]))
            for line in parsed.applied
        ]
        inbound.mkdir(exist_ok=True)
        (inbound / name).write_bytes(render_confirmation_file(parsed.file.layout, quoting))
    tick = harness.tick_sensor(esr_confirmation_sensor)
    runs = []
    for request in tick.run_requests:
        job = harness.definitions().resolve_job_def(request.job_name)
        runs.append(job.execute_in_process(run_config=request.run_config, instance=harness.instance, tags=request.tags))
    with RecordingServer(slack=True) as slack:
        harness.alert_channels = AlertChannelsResource(
            slack=EsrSlackResource(token="xoxb-test", api_url=slack.url), slack_channel="#esr"
        )
        harness.tick_sensor(esr_confirmation_alert_sensor)
        alerts = list(slack.received)

    assert len(runs) == len(list(harness.drop_dir.glob("DE_*.DAT"))) and all(r.success for r in runs) and alerts
    outcomes = "\n".join(str(r.get("esrOutcome")) for r in harness.records.find({}, {"esrOutcome": 1}))
    assert any(_appears(secret, outcomes) for secret in secrets)  # kept where it belongs
    captured = capfd.readouterr()
    haystacks = {
        "dagster event log": "\n".join(serialize_value(e) for r in runs for e in harness.instance.all_logs(r.run_id)),
        "python logging": "\n".join(record.getMessage() for record in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "alerts": "\n".join(alerts),
        "esrConfirmation documents": str(list(harness.database[ESR_CONFIRMATION].find({}))),
        "file ledger": str(list(harness.database[EXPORT_FILE].find({}))),
    }
    for where, text in haystacks.items():
        leaked = sorted(secret for secret in secrets if _appears(secret, text))
        assert not leaked, f"personal values in the {where}: {len(leaked)} found"


def _appears(secret: str, text: str) -> bool:
    """As a value of its own: a 7-digit GMC number inside a longer id, or as the fraction digits of an event
    timestamp (1764391234.7100174), is a coincidence."""
    return secret in text and re.search(rf"(?<!\w)(?<!\d\.){re.escape(secret)}(?!\w)", text) is not None


def _stored_outputs(harness) -> list[str]:
    """Every value Dagster's IO manager pickled under the instance's storage directory (the ops' outputs)."""
    root = Path(harness.instance.storage_directory())
    return [repr(pickle.loads(path.read_bytes())) for path in root.rglob("*") if path.is_file() and _pickled(path)]


def _pickled(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(1) == pickle.PROTO
