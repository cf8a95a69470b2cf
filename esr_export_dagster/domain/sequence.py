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
