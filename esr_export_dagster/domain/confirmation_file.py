"""ESR's confirmation files, APC (answering APP files) and DCC (answering DNC files): layouts and parser.

The column order below is this project's reading of ESR's confirmation schema (esr-interface.md §4.5); the
DCC fields are not published, so its layout is the least ESR must send. ``docs/confirmation-file-layout.md``
documents both and golden-file tests pin them. When ESR confirms its specification, ``APC_LAYOUT`` and
``DCC_LAYOUT`` are the one place to change.

A confirmation is read line by line. A line that cannot be trusted (wrong field count, unknown status or
message type, a reference that is not a number) is quarantined with its line number and the reason, never
its content (ESR's message text can quote names), and the rest of the file is applied. Bytes that are not
text at all make the whole file unreadable.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .app_file import APP_FILE_TYPE
from .deaneries import require_deanery
from .esr_csv import ENCODING, LINE_ENDING
from .notification_file import DNC_FILE_TYPE

APC_FILE_TYPE = "APC"
DCC_FILE_TYPE = "DCC"

SUCCESS = "SUCCESS"
FAIL = "FAIL"
LOAD_STATUSES = (SUCCESS, FAIL)
ERROR = "ERROR"
WARNING = "WARNING"
INFO = "INFO"
MESSAGE_TYPES = (ERROR, WARNING, INFO)

# What ESR did with one exported record, as stored in its ``esrOutcome``.
LOADED = "LOADED"
LOADED_WITH_WARNINGS = "LOADED_WITH_WARNINGS"
REJECTED = "REJECTED"
OUTCOME_SEVERITY = {LOADED: 0, LOADED_WITH_WARNINGS: 1, REJECTED: 2}

MAX_MESSAGE_TEXT = 200
_NUMBER = re.compile(r"[0-9]{1,15}")
_FILE_NAME = re.compile(r"DE_(?P<deanery>[A-Z]{2,4})_(?P<type>APC|DCC)_(?P<date>\d{8})_(?P<seq>\d{1,8})\.DAT")


@dataclass(frozen=True)
class ConfirmationLayout:
    file_type: str
    # The export file type this confirmation answers.
    answers: str
    record_type: str
    # The columns after the record type, in file order.
    columns: tuple[str, ...]
    # The column carrying the TIS reference the export line carried (placement id, notification id).
    reference_column: str
    # Numeric columns: a value that is not a whole number quarantines the line.
    numeric_columns: frozenset[str]


APC_LAYOUT = ConfirmationLayout(
    file_type=APC_FILE_TYPE,
    answers=APP_FILE_TYPE,
    record_type="APC",
    columns=(
        "deaneryNumber",
        "loadStatusCode",
        "messageType",
        "messageText",
        "applicantNumber",
        "assignmentId",
        "positionId",
        "positionNumber",
        "vacancyRefNumber",
        "esrVacancyId",
    ),
    reference_column="vacancyRefNumber",
    numeric_columns=frozenset(
        {"applicantNumber", "assignmentId", "positionId", "positionNumber", "vacancyRefNumber", "esrVacancyId"}
    ),
)

DCC_LAYOUT = ConfirmationLayout(
    file_type=DCC_FILE_TYPE,
    answers=DNC_FILE_TYPE,
    record_type="DCC",
    columns=("notificationReference", "loadStatusCode", "messageType", "messageText"),
    reference_column="notificationReference",
    numeric_columns=frozenset({"notificationReference"}),
)

LAYOUTS: dict[str, ConfirmationLayout] = {layout.file_type: layout for layout in (APC_LAYOUT, DCC_LAYOUT)}
LAYOUT_ANSWERING: dict[str, ConfirmationLayout] = {layout.answers: layout for layout in LAYOUTS.values()}


class UnreadableConfirmationError(ValueError):
    """The file is not text this parser can read at all; the message says why, never its content."""


@dataclass(frozen=True)
class ConfirmationFileName:
    name: str
    deanery: str
    file_type: str
    run_date: dt.date
    sequence: int

    @property
    def layout(self) -> ConfirmationLayout:
        return LAYOUTS[self.file_type]


def confirmation_file_name(deanery: str, file_type: str, run_date: dt.date, sequence: int) -> str:
    require_deanery(deanery)
    if file_type not in LAYOUTS:
        raise ValueError(f"Not a confirmation file type: {file_type!r}")
    return f"DE_{deanery}_{file_type}_{run_date:%Y%m%d}_{sequence:08d}.DAT"


def parse_confirmation_file_name(name: str) -> ConfirmationFileName:
    """The parts of ``DE_<DEANERY>_<APC|DCC>_<YYYYMMDD>_<SEQ>.DAT``; ``ValueError`` for any other name."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        raise ValueError("Not an ESR confirmation file name (DE_<DEANERY>_<APC|DCC>_<YYYYMMDD>_<SEQ>.DAT)")
    try:
        run_date = dt.datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError:
        raise ValueError("The confirmation file name's date is not a calendar date") from None
    return ConfirmationFileName(
        name=name,
        deanery=require_deanery(match["deanery"]),
        file_type=match["type"],
        run_date=run_date,
        sequence=int(match["seq"]),
    )


@dataclass(frozen=True)
class ConfirmationLine:
    """One trusted line: ESR's answer for one exported record."""

    line_number: int
    reference: int
    load_status: str
    message_type: str
    message_text: str
    deanery_post_number: str = ""
    applicant_number: int | None = None
    assignment_id: int | None = None
    position_id: int | None = None
    position_number: int | None = None
    esr_vacancy_id: int | None = None

    @property
    def outcome(self) -> str:
        if self.load_status == FAIL:
            return REJECTED
        if self.message_type in (WARNING, ERROR):
            return LOADED_WITH_WARNINGS
        return LOADED


@dataclass(frozen=True)
class QuarantinedLine:
    line_number: int
    # Why, in field names and kinds, never the line's values.
    reason: str


@dataclass(frozen=True)
class ParsedConfirmation:
    file: ConfirmationFileName
    applied: tuple[ConfirmationLine, ...]
    quarantined: tuple[QuarantinedLine, ...]

    @property
    def references(self) -> list[int]:
        return sorted({line.reference for line in self.applied})


def parse_confirmation(name: str, content: bytes) -> ParsedConfirmation:
    """Every line of a confirmation file, applied or quarantined. An empty file is valid: no line."""
    file = parse_confirmation_file_name(name)
    text = _decoded(content)
    applied: list[ConfirmationLine] = []
    quarantined: list[QuarantinedLine] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        try:
            applied.append(_parse_line(file.layout, number, line))
        except _Quarantine as reason:
            quarantined.append(QuarantinedLine(number, str(reason)))
    return ParsedConfirmation(file, tuple(applied), tuple(quarantined))


class _Quarantine(Exception):
    pass


def _decoded(content: bytes) -> str:
    nul = content.find(b"\x00")
    if nul >= 0:
        raise UnreadableConfirmationError(f"it holds NUL bytes (at byte {nul}): not a text file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableConfirmationError(f"it is not UTF-8 text (undecodable byte at offset {error.start})") from None
    return text


def _parse_line(layout: ConfirmationLayout, number: int, line: str) -> ConfirmationLine:
    try:
        (fields,) = list(csv.reader([line], strict=True))
    except (csv.Error, ValueError):
        raise _Quarantine("not a valid CSV line (unbalanced or misplaced double quotes)") from None
    expected = len(layout.columns) + 1
    if len(fields) != expected:
        raise _Quarantine(f"{len(fields)} fields, expected {expected} ({layout.file_type} layout)")
    if fields[0] != layout.record_type:
        raise _Quarantine(f"record type is not {layout.record_type}")
    values = dict(zip(layout.columns, fields[1:], strict=True))
    status = values["loadStatusCode"].strip().upper()
    if status not in LOAD_STATUSES:
        raise _Quarantine(f"loadStatusCode is not one of {', '.join(LOAD_STATUSES)}")
    message_type = values["messageType"].strip().upper()
    if message_type and message_type not in MESSAGE_TYPES:
        raise _Quarantine(f"messageType is not one of {', '.join(MESSAGE_TYPES)} or empty")
    numbers: dict[str, int | None] = {}
    for column in layout.numeric_columns:
        value = values[column].strip()
        if not value:
            if column == layout.reference_column:
                raise _Quarantine(f"{column} (the TIS reference) is empty")
            numbers[column] = None
        elif not _NUMBER.fullmatch(value):
            raise _Quarantine(f"{column} is not a whole number")
        else:
            numbers[column] = int(value)
    reference = numbers[layout.reference_column]
    assert reference is not None
    return ConfirmationLine(
        line_number=number,
        reference=reference,
        load_status=status,
        message_type=message_type,
        message_text=values["messageText"][:MAX_MESSAGE_TEXT],
        deanery_post_number=values.get("deaneryNumber", ""),
        applicant_number=numbers.get("applicantNumber"),
        assignment_id=numbers.get("assignmentId"),
        position_id=numbers.get("positionId"),
        position_number=numbers.get("positionNumber"),
        esr_vacancy_id=numbers.get("esrVacancyId"),
    )


# -- writing (ESR's side: the local stand-in and the golden files) ---------------------------------------


_FIELD_OF = {
    "deaneryNumber": "deanery_post_number",
    "loadStatusCode": "load_status",
    "messageType": "message_type",
    "messageText": "message_text",
    "applicantNumber": "applicant_number",
    "assignmentId": "assignment_id",
    "positionId": "position_id",
    "positionNumber": "position_number",
    "vacancyRefNumber": "reference",
    "esrVacancyId": "esr_vacancy_id",
    "notificationReference": "reference",
}
_QUOTED = frozenset({"deaneryNumber", "messageText"})


def render_confirmation_line(layout: ConfirmationLayout, line: ConfirmationLine) -> str:
    """A line as ESR writes it: the record type, numbers and codes unquoted, free text double-quoted."""
    fields = [layout.record_type]
    for column in layout.columns:
        value = getattr(line, _FIELD_OF[column])
        if value is None:
            fields.append("")
        elif column in _QUOTED:
            fields.append('"' + str(value).replace('"', '""') + '"')
        else:
            fields.append(str(value))
    return ",".join(fields)


def render_confirmation_file(layout: ConfirmationLayout, lines: Iterable[ConfirmationLine]) -> bytes:
    return "".join(render_confirmation_line(layout, line) + LINE_ENDING for line in lines).encode(ENCODING)


# -- which export file a confirmation answers -----------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """An exported record holding a reference: in which export file, of which deanery."""

    record_id: object
    export_file: str
    deanery: str


@dataclass(frozen=True)
class UnmatchedLine:
    line_number: int
    reference: int
    reason: str


@dataclass(frozen=True)
class Matching:
    # The export file the confirmation answers; None when no line matched any exported record.
    export_file: str | None
    matched: tuple[tuple[ConfirmationLine, object], ...]
    unmatched: tuple[UnmatchedLine, ...]


def match_confirmation(
    parsed: ParsedConfirmation, holdings: Mapping[int, Sequence[Holding]], export_file_type: str
) -> Matching:
    """The export file answered is the one of the confirmation's deanery holding the most of its references
    (the newest on a tie; ESR answers each file with one confirmation), never guessed from names or dates. A line whose
    reference is in no exported record, only in another deanery's, or not in that file, is unmatched."""
    deanery = parsed.file.deanery
    votes: dict[str, int] = {}
    for reference in parsed.references:
        for file_name in {h.export_file for h in holdings.get(reference, ()) if h.deanery == deanery}:
            if f"_{export_file_type}_" in file_name:
                votes[file_name] = votes.get(file_name, 0) + 1
    # A tie goes to the newest file: names of one deanery and type sort by date, then number.
    answered = max(votes, key=lambda name: (votes[name], name)) if votes else None
    matched: list[tuple[ConfirmationLine, object]] = []
    unmatched: list[UnmatchedLine] = []
    for line in parsed.applied:
        found = holdings.get(line.reference, ())
        own = [h for h in found if h.deanery == deanery]
        in_answered = [h for h in own if h.export_file == answered]
        if in_answered:
            matched.extend((line, holding.record_id) for holding in in_answered)
        elif not found:
            unmatched.append(UnmatchedLine(line.line_number, line.reference, "no exported record has this reference"))
        elif not own:
            unmatched.append(UnmatchedLine(line.line_number, line.reference, "the record belongs to another deanery"))
        else:
            unmatched.append(
                UnmatchedLine(line.line_number, line.reference, f"the record is not in the answered file {answered}")
            )
    return Matching(answered, tuple(matched), tuple(unmatched))
