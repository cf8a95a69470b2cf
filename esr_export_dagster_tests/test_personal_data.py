"""No personal value ever reaches logs, Dagster metadata, stored selections or error messages."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import re
from pathlib import Path
from typing import Any, Iterable

import pytest
from dagster import serialize_value

from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.local.demo_data import demo_records
from esr_export_dagster.storage.collections import APP_RECORDS

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
PERSONAL_FIELDS = (
    "lastName", "firstName", "middleNames", "previousLastName", "applicantEmailAddress", "homeTel",
    "mobileTel", "ukNino", "nationalTrainingNumber", "contactLastName", "contactFirstName",
    "contactHomePhone",
)


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
    records = demo_records(RUN_DATE)
    harness.database[APP_RECORDS].insert_many(records)
    secrets = personal_values(records)
    assert len(secrets) > 500

    caplog.set_level(logging.DEBUG)
    results = [harness.run(RUN_DATE, deanery) for deanery in DEANERIES]

    assert all(result.success for result in results)
    exported_text = "".join(p.read_text() for p in harness.export_dir.glob("*.DAT"))
    assert any(_appears(secret, exported_text) for secret in secrets)  # the files do carry them, as they must
    event_log = [serialize_value(entry) for r in results for entry in harness.instance.all_logs(r.run_id)]
    captured = capfd.readouterr()
    stored_selections = _stored_selections(harness)
    outputs = [serialize_value(r.output_for_node("app_export_file.write_app_export_files")) for r in results]
    haystacks = {
        "dagster event log": "\n".join(event_log),
        "python logging": "\n".join(record.getMessage() for record in caplog.records),
        "stdout/stderr": captured.out + captured.err,
        "stored selections": "\n".join(stored_selections),
        "asset outputs": "\n".join(outputs),
    }
    assert stored_selections, "the selections were not found in Dagster's storage"
    for where, text in haystacks.items():
        leaked = sorted(secret for secret in secrets if _appears(secret, text))
        assert not leaked, f"personal values in the {where}: {len(leaked)} found"


def _appears(secret: str, text: str) -> bool:
    """As a value of its own: a 7-digit GMC number inside a longer request id is a coincidence."""
    return secret in text and re.search(rf"(?<![\w]){re.escape(secret)}(?![\w])", text) is not None


def _stored_selections(harness) -> list[str]:
    root = Path(harness.instance.storage_directory()) / "app_record_selection"
    return [pickle.loads(path.read_bytes()).to_csv() for path in root.rglob("*") if path.is_file()]
