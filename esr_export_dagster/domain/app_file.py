"""The ESR APP file: its name and its line layout, in one place.

The column order below is this project's reading of ESR's Deanery Inbound Recruitment interface
(NHS0098) as far as public material shows it; ``docs/app-file-layout.md`` documents it and a golden-file
test pins it. When ESR confirms its layout, this tuple is the one place to change.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .deaneries import require_deanery
from .records import parse_date

APP_FILE_TYPE = "APP"
RECORD_TYPE = "APP"
LINE_ENDING = "\n"
ENCODING = "utf-8"

_MAX_SEQUENCE = 99_999_999
_FILE_NAME = re.compile(r"DE_(?P<deanery>[A-Z]{2,4})_(?P<type>[A-Z]{3})_(?P<date>\d{8})_(?P<seq>\d{8})\.DAT")
_FILE_TYPE = re.compile(r"[A-Z]{3}")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


def export_file_name(deanery: str, file_type: str, run_date: dt.date, sequence: int) -> str:
    """``DE_<DEANERY>_<TYPE>_<YYYYMMDD>_<SEQ>.DAT`` with an 8-digit sequence, as ESR's own files use."""
    require_deanery(deanery)
    if not _FILE_TYPE.fullmatch(file_type):
        raise ValueError(f"Not an ESR file type: {file_type!r}")
    if not 1 <= sequence <= _MAX_SEQUENCE:
        raise ValueError(f"Sequence number {sequence} does not fit ESR's 8-digit file sequence")
    return f"DE_{deanery}_{file_type}_{run_date:%Y%m%d}_{sequence:08d}.DAT"


@dataclass(frozen=True)
class ExportFileName:
    deanery: str
    file_type: str
    run_date: dt.date
    sequence: int


def parse_export_file_name(name: str) -> ExportFileName:
    match = _FILE_NAME.fullmatch(name)
    if match is None or int(match["seq"]) == 0:
        raise ValueError(f"Not an ESR export file name: {name!r}")
    return ExportFileName(
        deanery=require_deanery(match["deanery"]),
        file_type=match["type"],
        run_date=dt.datetime.strptime(match["date"], "%Y%m%d").date(),
        sequence=int(match["seq"]),
    )


@dataclass(frozen=True)
class Column:
    name: str
    source: str
    kind: str  # "text", "integer" or "date"

    @property
    def path(self) -> tuple[str | int, ...]:
        return tuple(int(part) if part.isdigit() else part for part in self.source.split("."))


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


@dataclass
class RenderReport:
    """What rendering had to normalise, by field name only (the values are personal data)."""

    normalised_fields: dict[str, int]

    def note(self, column: str) -> None:
        self.normalised_fields[column] = self.normalised_fields.get(column, 0) + 1


def render_app_line(record: Mapping[str, Any], report: RenderReport | None = None) -> str:
    """One CSV line: the record type, then every column of ``APP_COLUMNS``, without the line ending."""
    report = report if report is not None else RenderReport({})
    fields = [RECORD_TYPE]
    for column, path, formatter in _RENDERING:
        fields.append(formatter(column, _lookup(record, path), report))
    return ",".join(fields)


def render_app_file(records: Iterable[Mapping[str, Any]]) -> tuple[bytes, RenderReport]:
    """The whole file: one line per record in the order given, nothing else (no header, no trailer)."""
    report = RenderReport({})
    body = "".join(render_app_line(record, report) + LINE_ENDING for record in records)
    return body.encode(ENCODING), report


def _lookup(record: Mapping[str, Any], path: tuple[str | int, ...]) -> Any:
    """The value at ``path``; ``None`` when any step is missing or of the wrong kind."""
    value: Any = record
    for part in path:
        if isinstance(part, int) and not isinstance(value, list):
            return None
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
        if value is None:
            return None
    return value


def _format_text(column: Column, value: Any, report: RenderReport) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # A line break inside a value would split one applicant over two lines of the file.
    cleaned = _CONTROL_CHARACTERS.sub(" ", text)
    if cleaned != text:
        report.note(column.name)
    return '"' + cleaned.replace('"', '""') + '"'


def _format_integer(column: Column, value: Any, report: RenderReport) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int):
        report.note(column.name)
        return ""
    return str(value)


def _format_date(column: Column, value: Any, report: RenderReport) -> str:
    if value is None or value == "":
        return ""
    parsed = parse_date(value)
    if parsed is None:
        report.note(column.name)
        return ""
    return parsed.isoformat()


_FORMATTERS: dict[str, Callable[[Column, Any, RenderReport], str]] = {
    "text": _format_text,
    "integer": _format_integer,
    "date": _format_date,
}

# Each column with its path split once and its formatter: rendering a day's file touches every field.
_RENDERING = tuple((column, column.path, _FORMATTERS[column.kind]) for column in APP_COLUMNS)
