"""A stand-in for ESR's side of the interface, for `make run`, `make dev` and the tests (never production).

It reads an export file as ESR would and writes the confirmation ESR sends back: an APC file for an APP
file, a DCC file for a DNC file, one line per record, in the layouts of ``domain/confirmation_file.py``.
Its verdicts are deterministic, from the reference alone, so the demo always shows a few of each:
a reference divisible by 17 is rejected, one divisible by 7 loaded with a warning, every other loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from ..domain.confirmation_file import (
    ERROR,
    FAIL,
    INFO,
    LAYOUT_ANSWERING,
    SUCCESS,
    WARNING,
    ConfirmationLine,
    confirmation_file_name,
    parse_confirmation_file_name,
    render_confirmation_file,
)
from ..domain.esr_csv import parse_export_file_name

REJECTED_EVERY = 17
WARNED_EVERY = 7
REJECTION_TEXT = "Position is not in the establishment (ESR stand-in)"
WARNING_TEXT = "Projected end date after the position's end date (ESR stand-in)"
# ESR numbers its own files; the stand-in starts its numbers far from the export's, so that nothing could
# ever match a confirmation to its export file by the number in the names.
FIRST_CONFIRMATION_SEQUENCE = 70_001


def rejects(reference: int) -> bool:
    return reference % REJECTED_EVERY == 0


def answer(export_name: str, content: bytes, sequence: int, on: dt.date | None = None) -> tuple[str, bytes]:
    """The confirmation ESR sends for one export file: its name and bytes."""
    export = parse_export_file_name(export_name)
    layout = LAYOUT_ANSWERING[export.file_type]
    lines = []
    for position, fields in enumerate(csv.reader(content.decode("utf-8").splitlines()), start=1):
        reference = int(fields[1])
        if rejects(reference):
            status, kind, text = FAIL, ERROR, REJECTION_TEXT
        elif reference % WARNED_EVERY == 0:
            status, kind, text = SUCCESS, WARNING, WARNING_TEXT
        else:
            status, kind, text = SUCCESS, INFO, ""
        loaded = status == SUCCESS
        if layout.answers == "APP":
            lines.append(
                ConfirmationLine(
                    line_number=position,
                    reference=reference,
                    load_status=status,
                    message_type=kind,
                    message_text=text,
                    deanery_post_number=fields[4],
                    applicant_number=40_000_000 + reference if loaded else None,
                    assignment_id=50_000_000 + reference if loaded else None,
                    position_id=int(fields[2]) if fields[2] else None,
                    position_number=int(fields[3]) if fields[3] else None,
                    esr_vacancy_id=position,
                )
            )
        else:
            lines.append(ConfirmationLine(position, reference, status, kind, text))
    name = confirmation_file_name(export.deanery, layout.file_type, on or export.run_date, sequence)
    return name, render_confirmation_file(layout, lines)


def answer_folder(drop: Path, inbound: Path, on: dt.date | None = None) -> list[str]:
    """Answer every export file in a local drop folder not answered yet; returns the confirmations written.

    What was answered is remembered in ``.answered`` in the inbound folder, as ESR would remember what it
    loaded, so a second call answers only new files.
    """
    inbound.mkdir(parents=True, exist_ok=True)
    ledger = inbound / ".answered"
    answered = set(ledger.read_text().split()) if ledger.exists() else set()
    taken = [parse_confirmation_file_name(p.name).sequence for p in inbound.glob("DE_*.DAT")]
    sequence = max([FIRST_CONFIRMATION_SEQUENCE - 1, *taken]) + 1
    written = []
    for path in sorted(drop.glob("DE_*.DAT")) if drop.is_dir() else []:
        if path.name in answered:
            continue
        name, content = answer(path.name, path.read_bytes(), sequence, on)
        (inbound / name).write_bytes(content)
        written.append(name)
        answered.add(path.name)
        sequence += 1
    ledger.write_text("".join(f"{name}\n" for name in sorted(answered)))
    return written
