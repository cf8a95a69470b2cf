"""The DNC file's line layout and the notification contract, pinned by a golden file (no MongoDB, no Dagster).

Every personal value below is fictitious (7-digit GMC-shaped numbers, .invalid e-mail addresses).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest

from esr_export_dagster.domain.esr_csv import RenderReport
from esr_export_dagster.domain.notification_file import DNC_COLUMNS, render_notification_file, render_notification_line
from esr_export_dagster.domain.notifications import (
    CHANGED_DATES,
    COMMON_MANDATORY_FIELDS,
    CURRENT_OR_NEXT_TRAINEE,
    MANDATORY_BY_TITLE_CODE,
    NEW_POST,
    WITHDRAWAL,
    invalid_notification_fields,
    notification_generation_error,
)

from .conftest import PROJECT_ROOT

GOLDEN = Path(__file__).parent / "golden" / "dnc_file.DAT"
COLUMN_NAMES = ["recordType", *(column.name for column in DNC_COLUMNS)]
CREATED = dt.datetime(2021, 7, 30, 9, 15)


def common(notification_id: int, title_code: str) -> dict[str, Any]:
    return {
        "notificationId": notification_id,
        "deanery": "EOE",
        "status": "TO_EXPORT",
        "notificationTitleCode": title_code,
        "deaneryPostNumber": "EOE/RGT00/021/FY1/010",
        "managingDeaneryBodyCode": "EOE",
        "createdDate": CREATED,
    }


def next_trainee() -> dict[str, Any]:
    return {
        **common(4101, CURRENT_OR_NEXT_TRAINEE),
        "currentTraineeFirstName": "Zoë",
        "currentTraineeLastName": 'O"Brien, Jr',
        "currentTraineeGmcNumber": "7000001",
        "currentTraineeProjectedEndDate": "2021-08-03",
        "currentTraineeWorkingHourIndicator": 0.8,
        "currentTraineeVpdForNextPlacement": "NOT KNOWN",
        "nextAppointmentProjectedStartDate": dt.datetime(2021, 8, 4),
        "nextAppointmentTraineeFirstName": "Testfirst",
        "nextAppointmentTraineeLastName": "Testlast",
        "nextAppointmentTraineeEmailAddress": "trainee@example.invalid",
        "nextAppointmentTraineeGmcNumber": "7000002",
        "nextAppointmentTraineeGrade": "ST1",
        "nextAppointmentCurrentPlacementVpd": "096",
        "postVacantAtNextRotation": False,
        # Not a title-1 field: must not reach the line.
        "withdrawnTraineeLastName": "Stray",
    }


def withdrawal() -> dict[str, Any]:
    return {
        **common(4102, WITHDRAWAL),
        "withdrawnTraineeFirstName": "Testwithdrawn",
        "withdrawnTraineeLastName": "Line\nbreak",
        "withdrawnTraineeGmcNumber": "7000003",
        "withdrawalReason": "3",
    }


def changed_dates() -> dict[str, Any]:
    return {
        **common(4104, CHANGED_DATES),
        "nextAppointmentTraineeFirstName": "Testchanged",
        "nextAppointmentTraineeLastName": "Testlast",
        "nextAppointmentTraineeGmcNumber": "7000004",
        "changeOfProjectedEndDate": "2022-02-01",
    }


def new_post() -> dict[str, Any]:
    return {**common(4105, NEW_POST), "postVacantAtNextRotation": True}


def fields_of(line: str) -> dict[str, str]:
    (row,) = csv.reader(io.StringIO(line))
    return dict(zip(COLUMN_NAMES, row, strict=True))


# --- the golden file -------------------------------------------------------------------------------------


def test_the_rendered_file_matches_the_golden_file_byte_for_byte():
    content, report = render_notification_file([next_trainee(), withdrawal(), changed_dates(), new_post()])

    assert content == GOLDEN.read_bytes(), (
        "The DNC file layout changed. If that is intended, render the records again, inspect the result "
        "against docs/dnc-file-layout.md and replace esr_export_dagster_tests/golden/dnc_file.DAT."
    )
    assert report.normalised_fields == {"withdrawnTraineeLastName": 1}


def test_every_line_has_the_record_type_and_one_field_per_column():
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        fields = fields_of(line)
        assert fields["recordType"] == "DNC"


# --- per title code ----------------------------------------------------------------------------------


def test_a_line_carries_only_the_columns_of_its_title_code():
    line = fields_of(render_notification_line(next_trainee()))

    assert line["withdrawnTraineeLastName"] == ""
    assert line["nextAppointmentTraineeLastName"] == "Testlast"
    assert line["currentTraineeWorkingHourIndicator"] == "0.8"
    assert line["nextAppointmentProjectedStartDate"] == "2021-08-04"
    assert line["postVacantAtNextRotation"] == "N"


def test_a_withdrawal_never_carries_a_next_appointment_even_when_the_record_holds_one():
    record = {**withdrawal(), "nextAppointmentTraineeEmailAddress": "someone@example.invalid"}

    line = fields_of(render_notification_line(record))

    assert line["nextAppointmentTraineeEmailAddress"] == ""
    assert line["withdrawnTraineeGmcNumber"] == "7000003"


def test_a_new_post_line_holds_the_post_and_its_vacancy_only():
    line = fields_of(render_notification_line(new_post()))

    filled = {name for name, value in line.items() if value}
    assert filled == {
        "recordType",
        "notificationId",
        "notificationTitleCode",
        "deaneryPostNumber",
        "managingDeaneryBodyCode",
        "postVacantAtNextRotation",
    }
    assert line["postVacantAtNextRotation"] == "Y"


def test_a_malformed_value_is_left_empty_and_counted_by_column_name():
    report = RenderReport({})
    record = {**next_trainee(), "currentTraineeWorkingHourIndicator": "full time", "postVacantAtNextRotation": "no"}

    line = fields_of(render_notification_line(record, report))

    assert line["currentTraineeWorkingHourIndicator"] == ""
    assert line["postVacantAtNextRotation"] == ""
    assert report.normalised_fields == {"currentTraineeWorkingHourIndicator": 1, "postVacantAtNextRotation": 1}


# --- the contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record", [next_trainee(), withdrawal(), changed_dates(), new_post()], ids=["1", "2", "4", "5"]
)
def test_a_complete_notification_of_each_kind_is_valid(record):
    assert invalid_notification_fields(record) == []


@pytest.mark.parametrize(
    ("record", "removed", "reported"),
    [
        (next_trainee(), "nextAppointmentProjectedStartDate", "nextAppointmentProjectedStartDate"),
        (next_trainee(), "nextAppointmentTraineeLastName", "nextAppointmentTraineeLastName"),
        (withdrawal(), "withdrawnTraineeFirstName", "withdrawnTraineeFirstName"),
        (changed_dates(), "changeOfProjectedEndDate", "changeOfProjectedHireDate|changeOfProjectedEndDate"),
        (new_post(), "managingDeaneryBodyCode", "managingDeaneryBodyCode"),
        (new_post(), "createdDate", "createdDate"),
    ],
)
def test_a_missing_mandatory_field_of_the_notifications_kind_is_reported_by_name(record, removed, reported):
    del record[removed]

    assert invalid_notification_fields(record) == [reported]


def test_an_unknown_title_code_is_reported_and_no_payload_rule_applies():
    record = {**new_post(), "notificationTitleCode": "3"}

    assert invalid_notification_fields(record) == ["notificationTitleCode"]


def test_a_vacant_post_needs_no_next_appointment():
    record = {**common(4106, CURRENT_OR_NEXT_TRAINEE), "postVacantAtNextRotation": True}

    assert invalid_notification_fields(record) == []


def test_malformed_values_are_invalid_without_their_values_in_the_error():
    record = {
        **withdrawal(),
        "notificationId": True,
        "deaneryPostNumber": "X" * 31,
        "createdDate": "2021-07-30",
        "withdrawnTraineeLastName": "   ",
    }

    fields = invalid_notification_fields(record)
    error = notification_generation_error(fields)

    assert fields == ["notificationId", "deaneryPostNumber", "createdDate", "withdrawnTraineeLastName"]
    assert error == (
        "Missing or invalid mandatory fields for the ESR DNC file: "
        "notificationId, deaneryPostNumber, createdDate, withdrawnTraineeLastName"
    )
    assert "XXXX" not in error


# --- hostile values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "breaker", ["\x85", "\u2028", "\u2029", "\x80", "\x9f", "\x1c", "\x0b"], ids=lambda c: f"U+{ord(c):04X}"
)
def test_a_line_break_or_c1_control_in_a_notification_becomes_a_space_and_is_reported(breaker):
    record = {
        **next_trainee(),
        "currentTraineeLastName": f"Quill{breaker}feather",
        "nextAppointmentTraineeGrade": f"ST{breaker}1",
    }

    content, report = render_notification_file([record, withdrawal()])

    text = content.decode("utf-8")
    assert len(text.splitlines()) == 2
    line = fields_of(text.splitlines()[0])
    assert line["currentTraineeLastName"] == "Quill feather"
    assert line["nextAppointmentTraineeGrade"] == "ST 1"
    assert report.normalised_fields == {
        "currentTraineeLastName": 1,
        "nextAppointmentTraineeGrade": 1,
        "withdrawnTraineeLastName": 1,
    }


def test_a_value_that_is_not_text_in_a_text_column_is_written_empty_and_reported():
    record = {
        **next_trainee(),
        "currentTraineeFirstName": {"given": "Zoë"},
        "currentTraineeLastName": ["O'Brien"],
        "nextAppointmentTraineeGrade": True,
        "nextAppointmentTraineeEmailAddress": b"trainee@example.invalid",
        "currentTraineeGmcNumber": 7000001,
    }
    report = RenderReport({})

    line = fields_of(render_notification_line(record, report))

    assert line["currentTraineeFirstName"] == line["currentTraineeLastName"] == ""
    assert line["nextAppointmentTraineeGrade"] == line["nextAppointmentTraineeEmailAddress"] == ""
    assert line["currentTraineeGmcNumber"] == "7000001"
    assert report.normalised_fields == {
        "currentTraineeFirstName": 1,
        "currentTraineeLastName": 1,
        "nextAppointmentTraineeGrade": 1,
        "nextAppointmentTraineeEmailAddress": 1,
    }


@pytest.mark.parametrize("code", [["1"], {"code": "1"}, 1, "1\n"], ids=repr)
def test_a_title_code_that_is_not_one_of_the_codes_is_invalid_even_when_it_cannot_be_looked_up(code):
    record = {**next_trainee(), "notificationTitleCode": code}

    assert invalid_notification_fields(record) == ["notificationTitleCode"]
    # Never written (it is invalid), but rendering it must not fail either: no payload column is filled.
    line = fields_of(render_notification_line(record))
    assert line["nextAppointmentTraineeLastName"] == line["currentTraineeLastName"] == ""


@pytest.mark.parametrize(
    ("record", "name"),
    [
        (next_trainee(), "nextAppointmentTraineeFirstName"),
        (next_trainee(), "nextAppointmentTraineeLastName"),
        (withdrawal(), "withdrawnTraineeFirstName"),
        (withdrawal(), "withdrawnTraineeLastName"),
        (new_post(), "deaneryPostNumber"),
        (new_post(), "managingDeaneryBodyCode"),
    ],
)
@pytest.mark.parametrize("blank", ["\x00\x07", "\x80\x85\x9f", " \x1b ", "\u2028\x7f"], ids=repr)
def test_mandatory_text_of_control_characters_only_is_invalid_because_it_would_be_written_blank(record, name, blank):
    assert invalid_notification_fields({**record, name: blank}) == [name]


@pytest.mark.parametrize("value", [{"name": "Testlast"}, ["Testlast"], 42, True, b"Testlast"], ids=repr)
def test_mandatory_text_that_is_not_a_string_is_invalid(value):
    assert invalid_notification_fields({**next_trainee(), "nextAppointmentTraineeLastName": value}) == [
        "nextAppointmentTraineeLastName"
    ]
    assert invalid_notification_fields({**new_post(), "managingDeaneryBodyCode": value}) == ["managingDeaneryBodyCode"]


def test_a_managing_office_code_is_measured_as_written():
    # Each run of control characters is written as one space.
    assert invalid_notification_fields({**new_post(), "managingDeaneryBodyCode": "E" * 9 + "\r\n\x85"}) == []
    assert invalid_notification_fields({**new_post(), "managingDeaneryBodyCode": "E" * 10}) == []
    assert invalid_notification_fields({**new_post(), "managingDeaneryBodyCode": "E" * 11}) == [
        "managingDeaneryBodyCode"
    ]


# --- the documented layout ---------------------------------------------------------------------------

_ROW = re.compile(
    r"^\| (\d+) \| (\w+) \| (?:`([^`]+)`|constant `DNC`) \| [^|]+ \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|$",
    re.MULTILINE,
)


def _documented_mark(name: str, code: str) -> str:
    column = next(c for c in DNC_COLUMNS if c.name == name)
    if column.applies_to is not None and code not in column.applies_to:
        return "–"
    if name in COMMON_MANDATORY_FIELDS or name in MANDATORY_BY_TITLE_CODE[code]:
        return "M"
    if any(name in requirement.split("|") for requirement in MANDATORY_BY_TITLE_CODE[code]):
        return "M*"
    return "✓"


def test_dnc_file_layout_doc_matches_the_code():
    text = (PROJECT_ROOT / "docs" / "dnc-file-layout.md").read_text(encoding="utf-8")
    rows = _ROW.findall(text)

    assert rows[0][1] == "recordType"
    assert [int(row[0]) for row in rows] == list(range(1, len(DNC_COLUMNS) + 2))
    assert [(name, source) for _, name, source, *_ in rows[1:]] == [(c.name, c.source) for c in DNC_COLUMNS]
    for _, name, _, *marks in rows[1:]:
        assert marks == [_documented_mark(name, code) for code in ("1", "2", "4", "5")], name
