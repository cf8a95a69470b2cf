"""No personal value ever reaches logs, Dagster metadata, stored selections or error messages."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from dagster import serialize_value

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.local.demo_data import demo_notifications, demo_records

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
