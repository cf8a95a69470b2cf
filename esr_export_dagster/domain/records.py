"""What a GeneratedAppRecord must hold to be exported, checked without ever exposing a value.

Error texts name fields, never their contents: they end up in MongoDB (``generationError``), logs and the
Dagster UI, none of which may carry personal data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from .text_values import mandatory_text_as_written

TO_EXPORT = "TO_EXPORT"
EXPORTED = "EXPORTED"
INVALID_DATA = "INVALID_DATA"
DELETED_BEFORE_EXPORT = "DELETED_BEFORE_EXPORT"

# The contract's mandatory set. ``placementId`` is checked too: it is the record's identity and ESR echoes
# it back as the vacancy reference, so a line without it could never be traced.
EXPORT_MANDATORY_FIELDS: tuple[str, ...] = (
    "placementId",
    "applicant.effectiveDate",
    "applicant.lastName",
    "applicant.firstName",
    "applicant.dob",
    "positionId",
    "positionNumber",
    "startDate",
    "deaneryPostNumber",
)

# ESR's limits from the POR schema (esr-interface.md §4.3).
_MAX_DIGITS = {"placementId": 18, "positionId": 15, "positionNumber": 10}
_MAX_POST_NUMBER_LENGTH = 30
# A date, or a serialised datetime whose day is taken: anything else is not a date.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_DATE_FIELDS = frozenset({"applicant.effectiveDate", "applicant.dob"})
_NAME_FIELDS = frozenset({"applicant.lastName", "applicant.firstName"})


def field_value(document: Mapping[str, Any], dotted: str) -> Any:
    """Read ``a.b`` from a whole document, nested, exactly as the file renderer reads it.

    A top-level key literally named ``applicant.lastName`` is not the field: the file would write the nested
    one, so validation must judge that one too.
    """
    value: Any = document
    for part in dotted.split("."):
        try:
            value = value[part]
        except (KeyError, TypeError, IndexError):
            return None
    return value


def parse_date(value: Any) -> dt.date | None:
    """A date from a BSON datetime or an ISO ``YYYY-MM-DD`` string; ``None`` when it is neither."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def invalid_mandatory_fields(document: Mapping[str, Any]) -> list[str]:
    """The names of the mandatory fields that are missing or malformed, in contract order."""
    return [name for name in EXPORT_MANDATORY_FIELDS if not _is_valid(name, field_value(document, name))]


def generation_error(invalid_fields: list[str]) -> str:
    return "Missing or invalid mandatory fields for the ESR APP file: " + ", ".join(invalid_fields)


def _is_valid(name: str, value: Any) -> bool:
    if value is None:
        return False
    if name in _DATE_FIELDS:
        return parse_date(value) is not None
    if name in _NAME_FIELDS:
        # Judged as written: a name of control characters only would reach ESR as a blank.
        return mandatory_text_as_written(value) is not None
    if name in _MAX_DIGITS:
        return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10 ** _MAX_DIGITS[name]
    if name == "startDate":
        return isinstance(value, dt.datetime)
    if name == "deaneryPostNumber":
        # Measured as written to the file: padding counts against ESR's limit.
        written = mandatory_text_as_written(value)
        return written is not None and len(written) <= _MAX_POST_NUMBER_LENGTH
    return True
