"""ESR file sequence numbers: their range, and what a stored counter must hold to be trusted.

ESR's file names carry an 8-digit sequence. A counter is the last number issued; the next file takes the
number after it. A counter holding anything but a whole number in that range is not guessed at: numbering
from it could repeat a number ESR already has, so the export stops and says what it found.
"""

from __future__ import annotations

from typing import Any

MAX_SEQUENCE = 99_999_999


def counter_value_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a counter's last issued number, or ``None`` when it can.

    A whole number stored as a double (what the mongo shell writes for ``seq: 2765``) is a whole number.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return "not a whole number"
    if value < 0:
        return "negative"
    if value > MAX_SEQUENCE:
        return f"beyond ESR's 8-digit range (at most {MAX_SEQUENCE})"
    return None


def as_counter_value(value: Any) -> int:
    """The number a valid counter value stands for (``counter_value_problem`` has accepted it)."""
    return int(value)


def numbers_fit(last_issued: int, file_count: int) -> bool:
    """Whether ``file_count`` more files can be numbered after ``last_issued`` within ESR's range."""
    return last_issued + file_count <= MAX_SEQUENCE


# How far one sequence reaches. ``shared``: one sequence per file type across all deaneries, as ESR has always
# received them (DE_EMD_APP_20210727_00003754.DAT, then DE_WMD_APP_20210727_00003757.DAT, ...). ``deanery``:
# one sequence per deanery and file type, for a site that has agreed it with ESR.
SHARED_SCOPE = "shared"
DEANERY_SCOPE = "deanery"
SEQUENCE_SCOPES = (SHARED_SCOPE, DEANERY_SCOPE)
SEQUENCE_SCOPE_VARIABLE = "ESR_SEQUENCE_SCOPE"


def checked_scope(value: str) -> str:
    """The scope ``value`` names, or an error naming the variable and the values it may take."""
    if value not in SEQUENCE_SCOPES:
        raise ValueError(
            f"{SEQUENCE_SCOPE_VARIABLE} is {value!r}: it must be {' or '.join(SEQUENCE_SCOPES)} "
            f"(default {SHARED_SCOPE}, one sequence per file type across all deaneries)"
        )
    return value


def sequence_counter_id(file_type: str, deanery: str, scope: str) -> str:
    """The ``counter`` document a deanery's files of one type take their numbers from: ``APP`` (shared) or
    ``APP_EOE`` (deanery)."""
    return file_type if checked_scope(scope) == SHARED_SCOPE else f"{file_type}_{deanery}"
