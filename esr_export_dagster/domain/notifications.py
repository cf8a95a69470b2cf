"""What a notification record (``notificationRecord``) must hold to be exported in a DNC file.

Notifications tell ESR what changed after a post's applicants were sent (esr-interface.md §4.6): the
title code says which kind, and each kind has its own mandatory payload. Like the applicant checks, error
texts name fields, never their contents: the payload is personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .records import field_value, parse_date
from .text_values import mandatory_text_as_written

CURRENT_OR_NEXT_TRAINEE = "1"
WITHDRAWAL = "2"
CHANGED_DATES = "4"
NEW_POST = "5"
TITLE_CODES: dict[str, str] = {
    CURRENT_OR_NEXT_TRAINEE: "current/next trainee",
    WITHDRAWAL: "withdrawal",
    CHANGED_DATES: "changed projected hire/end dates",
    NEW_POST: "new post",
}

# Every notification, whatever its kind.
COMMON_MANDATORY_FIELDS: tuple[str, ...] = (
    "notificationId",
    "notificationTitleCode",
    "deaneryPostNumber",
    "managingDeaneryBodyCode",
    "createdDate",
)
# Per kind. Alternatives joined by "|" need one of them. A current/next-trainee notification for a post
# left vacant at the next rotation has no next appointment to describe.
MANDATORY_BY_TITLE_CODE: dict[str, tuple[str, ...]] = {
    CURRENT_OR_NEXT_TRAINEE: (
        "nextAppointmentProjectedStartDate",
        "nextAppointmentTraineeFirstName",
        "nextAppointmentTraineeLastName",
    ),
    WITHDRAWAL: ("withdrawnTraineeFirstName", "withdrawnTraineeLastName"),
    CHANGED_DATES: ("changeOfProjectedHireDate|changeOfProjectedEndDate",),
    NEW_POST: (),
}

_DATE_FIELDS = frozenset(
    {
        "nextAppointmentProjectedStartDate",
        "currentTraineeProjectedEndDate",
        "changeOfProjectedHireDate",
        "changeOfProjectedEndDate",
    }
)
_MAX_POST_NUMBER_LENGTH = 30
_MAX_MANAGING_OFFICE_LENGTH = 10


def invalid_notification_fields(document: Mapping[str, Any]) -> list[str]:
    """The names of the mandatory fields that are missing or malformed, common ones first."""
    invalid = [name for name in COMMON_MANDATORY_FIELDS if not _is_valid(name, field_value(document, name))]
    code = document.get("notificationTitleCode")
    if not isinstance(code, str) or code not in MANDATORY_BY_TITLE_CODE:
        return invalid
    if code == CURRENT_OR_NEXT_TRAINEE and document.get("postVacantAtNextRotation") is True:
        return invalid
    for requirement in MANDATORY_BY_TITLE_CODE[code]:
        if not any(_is_valid(name, field_value(document, name)) for name in requirement.split("|")):
            invalid.append(requirement)
    return invalid


def notification_generation_error(invalid_fields: list[str]) -> str:
    return "Missing or invalid mandatory fields for the ESR DNC file: " + ", ".join(invalid_fields)


def _is_valid(name: str, value: Any) -> bool:
    if value is None:
        return False
    if name == "notificationId":
        return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**18
    if name == "notificationTitleCode":
        # A list or sub-document cannot even be looked up (unhashable): it is simply not a title code.
        return isinstance(value, str) and value in TITLE_CODES
    if name == "createdDate":
        return isinstance(value, dt.datetime)
    if name in _DATE_FIELDS:
        return parse_date(value) is not None
    # Every other mandatory field is text, judged as it will be written: a value of control characters
    # only would reach ESR as a blank, and the length limits count what the file carries.
    written = mandatory_text_as_written(value)
    if written is None:
        return False
    if name == "deaneryPostNumber":
        return len(written) <= _MAX_POST_NUMBER_LENGTH
    if name == "managingDeaneryBodyCode":
        return len(written) <= _MAX_MANAGING_OFFICE_LENGTH
    return True
