"""The ESR APP file: its line layout, in one place.

The column order below is this project's reading of ESR's Deanery Inbound Recruitment interface
(NHS0098) as far as public material shows it; ``docs/app-file-layout.md`` documents it and a golden-file
test pins it. When ESR confirms its layout, this tuple is the one place to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .esr_csv import Column, RenderReport, compile_columns, render_file, render_line

APP_FILE_TYPE = "APP"
RECORD_TYPE = "APP"


def _text(name: str, source: str | None = None) -> Column:
    return Column(name, source or f"applicant.{name}", "text")


def _date(name: str, source: str | None = None) -> Column:
    return Column(name, source or f"applicant.{name}", "date")


APP_COLUMNS: tuple[Column, ...] = (
    Column("vacancyReference", "placementId", "integer"),
    Column("positionId", "positionId", "integer"),
    Column("positionNumber", "positionNumber", "integer"),
    _text("deaneryPostNumber", "deaneryPostNumber"),
    _date("effectiveDate"),
    _date("projectedHireDate"),
    _date("projectedEndDate"),
    _text("title"),
    _text("lastName"),
    _text("firstName"),
    _text("middleNames"),
    _text("previousLastName"),
    _text("gender"),
    _date("dob"),
    _text("maritalStatus"),
    _text("nationality"),
    _text("countryOfBirth"),
    _text("ukNino"),
    _text("nationalTrainingNumber"),
    _text("professionalBody", "applicant.professionalBodies.0.body"),
    _text("professionalRegistrationNumber", "applicant.professionalBodies.0.regNumber"),
    _date("professionalRegistrationExpiryDate", "applicant.professionalBodies.0.expiryDate"),
    _text("address1", "applicant.address.address1"),
    _text("town", "applicant.address.town"),
    _text("county", "applicant.address.county"),
    _text("postcode", "applicant.address.postcode"),
    _text("country", "applicant.address.country"),
    _text("homeTel"),
    _text("mobileTel"),
    _text("applicantEmailAddress"),
    _text("ethnicOriginCode"),
    _text("religiousBelief"),
    _text("sexualOrientation"),
    _text("disability"),
    _text("contactTitle"),
    _text("contactFirstName"),
    _text("contactLastName"),
    _text("contactGender"),
    _text("contactHomePhone"),
)


def render_app_line(record: Mapping[str, Any], report: RenderReport | None = None) -> str:
    """One CSV line: the record type, then every column of ``APP_COLUMNS``, without the line ending."""
    return render_line(RECORD_TYPE, _RENDERING, record, report if report is not None else RenderReport({}))


def render_app_file(records: Iterable[Mapping[str, Any]]) -> tuple[bytes, RenderReport]:
    """The whole file: one line per record in the order given, nothing else (no header, no trailer)."""
    report = RenderReport({})
    return render_file(render_app_line(record, report) for record in records), report


_RENDERING = compile_columns(APP_COLUMNS)
