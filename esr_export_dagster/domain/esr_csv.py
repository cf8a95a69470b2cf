"""Writing ESR's CSV export files: file names, column kinds and line rendering, shared by APP and DNC.

Text is double-quoted with embedded quotes doubled, integers and dates (``YYYY-MM-DD``) are unquoted, a
missing value is an empty field, and a line break or control character inside a value (which would split a
record over two lines) is replaced by a space and counted by column name, never by value. A text column
takes strings, and numbers in plain decimal form; anything else is written empty and counted the same way.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .deaneries import require_deanery
from .records import parse_date
from .sequence import MAX_SEQUENCE
from .text_values import normalise_text

LINE_ENDING = "\n"
ENCODING = "utf-8"

_FILE_NAME = re.compile(r"DE_(?P<deanery>[A-Z]{2,4})_(?P<type>[A-Z]{3})_(?P<date>\d{8})_(?P<seq>\d{8})\.DAT")
_FILE_TYPE = re.compile(r"[A-Z]{3}")


def export_file_name(deanery: str, file_type: str, run_date: dt.date, sequence: int) -> str:
    """``DE_<DEANERY>_<TYPE>_<YYYYMMDD>_<SEQ>.DAT`` with an 8-digit sequence, as ESR's own files use."""
    require_deanery(deanery)
    if not _FILE_TYPE.fullmatch(file_type):
        raise ValueError(f"Not an ESR file type: {file_type!r}")
    if not 1 <= sequence <= MAX_SEQUENCE:
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
    kind: str  # "text", "integer", "date", "decimal" or "flag"
    # The record kinds (notification title codes) whose lines carry this column; None: every line.
    applies_to: frozenset[str] | None = None

    @property
    def path(self) -> tuple[str | int, ...]:
        return tuple(int(part) if part.isdigit() else part for part in self.source.split("."))


@dataclass
class RenderReport:
    """What rendering had to normalise, by field name only (the values are personal data)."""

    normalised_fields: dict[str, int]

    def note(self, column: str) -> None:
        self.normalised_fields[column] = self.normalised_fields.get(column, 0) + 1


Lookup = Callable[[Mapping[str, Any]], Any]
Rendering = tuple[tuple[Column, Lookup, Callable[[Column, Any, RenderReport], str]], ...]


def compile_columns(columns: Sequence[Column]) -> Rendering:
    """Each column with its lookup and formatter built once: rendering a day's file touches every field."""
    return tuple((column, _compile_lookup(column.path), _FORMATTERS[column.kind]) for column in columns)


def render_line(
    record_type: str,
    rendering: Rendering,
    record: Mapping[str, Any],
    report: RenderReport,
    kind: str | None = None,
) -> str:
    """The record type, then every column, without the line ending; columns not for ``kind`` stay empty."""
    fields = [record_type]
    append = fields.append
    for column, lookup, formatter in rendering:
        if column.applies_to is not None and kind not in column.applies_to:
            append("")
        else:
            append(formatter(column, lookup(record), report))
    return ",".join(fields)


def render_file(lines: Iterable[str]) -> bytes:
    return "".join(line + LINE_ENDING for line in lines).encode(ENCODING)


def _compile_lookup(path: tuple[str | int, ...]) -> Lookup:
    """The value at ``path`` in a record; ``None`` when any step is missing or of the wrong kind.

    A day's file renders every column of every record, and most optional applicant fields are absent:
    a dictionary's ``get`` answers a missing key without raising, which is what makes this the fast path.
    """

    def lookup(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for part in path:
            if type(value) is dict:
                value = value.get(part)
            elif isinstance(part, int) and isinstance(value, list):
                value = value[part] if -len(value) <= part < len(value) else None
            elif isinstance(part, str) and isinstance(value, Mapping):
                value = value.get(part)
            else:
                return None
            if value is None:
                return None
        return value

    return lookup


def _format_text(column: Column, value: Any, report: RenderReport) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = normalise_text(value)
        if text != value:
            report.note(column.name)
    else:
        text = _plain_decimal(value)
        if text is None:
            # A sub-document, list, flag, date or binary value here is an upstream error: its Python
            # form (a repr) would reach ESR as if it were the value.
            report.note(column.name)
            return ""
    return '"' + text.replace('"', '""') + '"'


def _plain_decimal(value: Any) -> str | None:
    """A number as digits (legacy post codes and phone numbers stored as numbers), else ``None``.

    MongoDB's shell stores every number as a double, so ``12345.0`` is written ``12345``, and no number is
    ever written with an exponent.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    return None


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
    if type(value) is dt.datetime:
        return value.date().isoformat()
    parsed = parse_date(value)
    if parsed is None:
        report.note(column.name)
        return ""
    return parsed.isoformat()


def _format_decimal(column: Column, value: Any, report: RenderReport) -> str:
    """One decimal place (ESR's whole-time-equivalent indicator), unquoted."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        report.note(column.name)
        return ""
    return f"{value:.1f}"


def _format_flag(column: Column, value: Any, report: RenderReport) -> str:
    if value is None:
        return ""
    if not isinstance(value, bool):
        report.note(column.name)
        return ""
    return "Y" if value else "N"


_FORMATTERS: dict[str, Callable[[Column, Any, RenderReport], str]] = {
    "text": _format_text,
    "integer": _format_integer,
    "date": _format_date,
    "decimal": _format_decimal,
    "flag": _format_flag,
}
