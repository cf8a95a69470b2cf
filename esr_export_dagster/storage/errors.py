"""Errors that stop one deanery's export because the state it found cannot be trusted.

Each message names the document or file and what is wrong with it, says what was left untouched, and is
safe to show in the Dagster UI and in alerts: counters, batch ids, file names, record ids and field names,
never a record's values. None of them is retried: a retry would find the same state.
"""

from __future__ import annotations

from typing import Any

# A counter or batch value is shown so that the engineer sees what is stored there. It is never personal
# data, but it is cut short in case something large was written into it by mistake.
_SHOWN_LENGTH = 40


class ExportStateError(RuntimeError):
    """MongoDB or the export directory holds state the export refuses to build on."""


class CorruptExportStateError(ExportStateError):
    """A counter, batch or file-ledger document is missing, or holds a value of the wrong kind."""


class ExportFileConflictError(ExportStateError):
    """A file's final name is taken by other bytes: nothing is ever overwritten."""


def shown(value: Any) -> str:
    """A stored protocol value as an error shows it: ``"2765" (text)``, ``None (null)``."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > _SHOWN_LENGTH:
        text = text[: _SHOWN_LENGTH - 3] + "..."
    kind = {str: "text", float: "a fraction", bool: "true/false", int: "a whole number"}.get(
        type(value), type(value).__name__
    )
    return f"{text} ({kind})"
