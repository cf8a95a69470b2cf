"""Hostile values in records, and leftovers in the export directory, through the real Dagster job against a
real MongoDB wire server, mixed with valid records, for both streams.

Whatever the values, every exported record is one line of its file for any reader (the csv module and
str.splitlines alike), a value is written as the documented rules say (docs/app-file-layout.md), a
mandatory value that would be written blank or is not text sets its record aside as INVALID_DATA naming
the field, and what was normalised is reported by column name only. Every value is fictitious.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from typing import Any

import pytest
from dagster import serialize_value

from esr_export_dagster.domain.app_file import APP_COLUMNS
from esr_export_dagster.domain.esr_csv import Column
from esr_export_dagster.domain.notification_file import DNC_COLUMNS
from esr_export_dagster.domain.records import EXPORTED, INVALID_DATA, TO_EXPORT
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.domain.window import NOTIFICATION_RUN_TIME_UTC
from esr_export_dagster.local.demo_data import applicant_record, notification_record

from .conftest import each_stream
from .invariants import assert_export_invariants, files_on_disk

pytestmark = [pytest.mark.integration, each_stream]

RUN_DATE = dt.date(2021, 7, 31)
DEANERY = "EOE"

# Per stream: the mandatory names, and optional text columns a current/next-trainee notification carries.
MANDATORY_NAMES = {
    "APP": ("lastName", "firstName"),
    "DNC": ("nextAppointmentTraineeLastName", "nextAppointmentTraineeFirstName"),
}
OPTIONAL_TEXT = {
    "APP": ("middleNames", "address1", "homeTel", "maritalStatus", "postcode"),
    "DNC": (
        "currentTraineeFirstName",
        "currentTraineeLastName",
        "nextAppointmentTraineeGrade",
        "nextAppointmentTraineeEmailAddress",
        "currentTraineeVpdForNextPlacement",
    ),
}


def columns_of(harness) -> dict[str, Column]:
    columns = APP_COLUMNS if harness.stream is APP_STREAM else DNC_COLUMNS
    return {column.name: column for column in columns}


def add_due_with(harness, **values: Any) -> dict[str, Any]:
    """One record due on RUN_DATE, as upstream writes it, with ``values`` by column name.

    Built whole before it is inserted, so that a datetime or binary value is stored as what it is.
    """
    if harness.stream is APP_STREAM:
        record = applicant_record(next(harness.placement_ids), DEANERY, RUN_DATE + dt.timedelta(days=10))
    else:
        created = dt.datetime.combine(RUN_DATE, NOTIFICATION_RUN_TIME_UTC) - dt.timedelta(hours=3)
        record = notification_record(next(harness.notification_ids), DEANERY, created)
    columns = columns_of(harness)
    for name, value in values.items():
        *parents, leaf = columns[name].path
        target: Any = record
        for part in parents:
            target = target[part]
        target[leaf] = value
    harness.records.insert_one(record)
    return record


def exported_rows(harness) -> dict[int, dict[str, str]]:
    """Every line of every file of the stream, by reference, as the csv module reads it, after checking
    that the csv module and str.splitlines both see exactly one line per record marked EXPORTED into it."""
    names = ["recordType", *columns_of(harness)]
    rows: dict[int, dict[str, str]] = {}
    for name, path in files_on_disk(harness.export_dir, file_type=harness.stream.file_type).items():
        text = path.read_bytes().decode("utf-8")
        marked = harness.records.count_documents({"status": EXPORTED, "exportedFileName": name})
        parsed = list(csv.reader(io.StringIO(text, newline="")))
        assert len(parsed) == marked, f"{name}: {len(parsed)} CSV rows for {marked} exported records"
        assert len(text.splitlines()) == marked, f"{name}: {len(text.splitlines())} lines for {marked} records"
        for row in parsed:
            assert len(row) == len(names), f"{name}: a row of {len(row)} fields"
            rows[int(row[1])] = dict(zip(names, row, strict=True))
    return rows


def normalised_fields_metadata(harness, result) -> dict[str, int]:
    (materialization,) = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == harness.file_asset_key
    ]
    entry = materialization.metadata.get("normalised_fields")
    return dict(entry.value) if entry is not None else {}


def event_log_text(harness, result) -> str:
    return "\n".join(serialize_value(entry) for entry in harness.instance.all_logs(result.run_id))


def test_line_breaks_and_control_characters_never_split_a_record(harness):
    file_type = harness.stream.file_type
    valid = harness.add_due(DEANERY, RUN_DATE, count=3)
    hostile = {
        "Hostile\x85nel": "Hostile nel",
        "Hostile\u2028line": "Hostile line",
        "Hostile\u2029paragraph": "Hostile paragraph",
        "Hostile\x80\x9fcone": "Hostile cone",
        "Hostile\r\ncrlf\r": "Hostile crlf ",
        "Hostile\x0b\x0cvtff": "Hostile vtff",
        "Hostile\x1c\x1d\x1eseparators": "Hostile separators",
        "Hostile\x00nul\x7f": "Hostile nul ",
        'Hostile "quoted",\ncomma': 'Hostile "quoted", comma',
    }
    touched = (*MANDATORY_NAMES[file_type][:1], *OPTIONAL_TEXT[file_type])
    records = [add_due_with(harness, **{column: value for column in touched}) for value in hostile]

    result = harness.run(RUN_DATE, DEANERY)

    assert result.success
    rows = exported_rows(harness)
    assert set(rows) == {harness.reference(r) for r in valid + records}
    for record, expected in zip(records, hostile.values(), strict=True):
        row = rows[harness.reference(record)]
        assert {column: row[column] for column in touched} == {column: expected for column in touched}
    assert normalised_fields_metadata(harness, result) == {column: len(hostile) for column in touched}
    assert "Hostile" not in event_log_text(harness, result)
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_a_mandatory_name_of_control_characters_only_becomes_invalid_data(harness):
    file_type = harness.stream.file_type
    valid = harness.add_due(DEANERY, RUN_DATE, count=2)
    columns = columns_of(harness)
    blanks = ["\x00\x07", "\x80\x85\x9f", "\x1b \x01", "\u2028\x7f\u2029", " \x00 "]
    broken = {name: [add_due_with(harness, **{name: blank}) for blank in blanks] for name in MANDATORY_NAMES[file_type]}

    summary = harness.run_ok(RUN_DATE, DEANERY)

    assert summary["invalid_marked_this_run"] == len(blanks) * len(broken)
    for name, records in broken.items():
        for record in records:
            document = harness.records.find_one({"_id": record["_id"]})
            assert document["status"] == INVALID_DATA
            assert document["generationError"] == harness.stream.generation_error([columns[name].source])
            assert "exportedFileName" not in document
    assert set(exported_rows(harness)) == {harness.reference(r) for r in valid}
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_values_that_are_not_text_are_written_empty_and_numbers_as_plain_digits(harness):
    file_type = harness.stream.file_type
    valid = harness.add_due(DEANERY, RUN_DATE, count=2)
    first, second, third, fourth, fifth = OPTIONAL_TEXT[file_type]
    not_text = add_due_with(
        harness,
        **{
            first: {"given": "Hostilesub"},
            second: ["Hostilelist", "more"],
            third: True,
            fourth: dt.datetime(1994, 3, 17, 9, 30),
            fifth: b"Hostilebytes",
        },
    )
    numbers = add_due_with(harness, **{first: 12345, second: 1632960000.0, third: 0.5, fourth: -7})

    result = harness.run(RUN_DATE, DEANERY)

    assert result.success
    rows = exported_rows(harness)
    assert set(rows) == {harness.reference(r) for r in [*valid, not_text, numbers]}
    written = rows[harness.reference(not_text)]
    assert [written[c] for c in (first, second, third, fourth, fifth)] == ["", "", "", "", ""]
    digits = rows[harness.reference(numbers)]
    assert [digits[c] for c in (first, second, third, fourth)] == ["12345", "1632960000", "0.5", "-7"]
    content = b"".join(path.read_bytes() for path in files_on_disk(harness.export_dir, file_type=file_type).values())
    for trace in (b"Hostile", b"{", b"[", b"True", b"datetime", b"b'"):
        assert trace not in content
    assert normalised_fields_metadata(harness, result) == {c: 1 for c in (first, second, third, fourth, fifth)}
    assert "Hostile" not in event_log_text(harness, result)
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_mandatory_text_that_is_not_text_becomes_invalid_data_and_fails_nothing_else(harness):
    file_type = harness.stream.file_type
    valid = harness.add_due(DEANERY, RUN_DATE, count=2)
    columns = columns_of(harness)
    last_name, first_name = MANDATORY_NAMES[file_type]
    cases = {
        "deaneryPostNumber": ["EOE/RGT00/021/F1/003"],
        last_name: {"family": "Hostilename"},
        first_name: 42,
    }
    if file_type == "DNC":
        # Not even hashable: looking it up among the title codes must not fail the partition.
        cases.update(notificationTitleCode=["1"], managingDeaneryBodyCode={"code": "EOE"})
    broken = {name: add_due_with(harness, **{name: value}) for name, value in cases.items()}

    summary = harness.run_ok(RUN_DATE, DEANERY)

    assert summary["invalid_marked_this_run"] == len(broken)
    for name, record in broken.items():
        document = harness.records.find_one({"_id": record["_id"]})
        assert document["status"] == INVALID_DATA, name
        assert document["generationError"] == harness.stream.generation_error([columns[name].source])
    assert set(exported_rows(harness)) == {harness.reference(r) for r in valid}
    assert harness.records.count_documents({"status": TO_EXPORT}) == 0
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_a_formula_like_prefix_is_written_byte_for_byte_as_given(harness):
    file_type = harness.stream.file_type
    last_name = MANDATORY_NAMES[file_type][0]
    optional = OPTIONAL_TEXT[file_type][0]
    formulas = ['=HYPERLINK("http://example.invalid","x")', "+441632960000", "-Quillfeather", "@SUM(A1:A2)"]
    records = [add_due_with(harness, **{last_name: value, optional: value}) for value in formulas]
    # A leading tab or carriage return is a control character: it becomes a space like any other.
    tabbed = add_due_with(harness, **{last_name: "\t=1+2", optional: "\r=1+2"})

    result = harness.run(RUN_DATE, DEANERY)

    assert result.success
    (path,) = files_on_disk(harness.export_dir, file_type=file_type).values()
    content = path.read_bytes()
    for value in formulas:
        quoted = ('"' + value.replace('"', '""') + '"').encode("utf-8")
        assert content.count(b"," + quoted + b",") == 2, value
    assert content.count(b'," =1+2",') == 2
    rows = exported_rows(harness)
    assert [rows[harness.reference(r)][last_name] for r in records] == formulas
    assert normalised_fields_metadata(harness, result) == {last_name: 1, optional: 1}
    assert rows[harness.reference(tabbed)][last_name] == " =1+2"
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_a_leftover_partial_directory_does_not_stop_the_export(harness):
    records = harness.add_due(DEANERY, RUN_DATE, count=3)
    harness.export_dir.mkdir(mode=0o700)
    stale = harness.export_dir / ".partial-left-by-hand"
    (stale / "nested").mkdir(parents=True)
    (stale / "nested" / "copy.DAT").write_bytes(b"stale\n")
    two_hours_ago = stale.stat().st_mtime - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    recent = harness.export_dir / ".partial-still-being-written"
    recent.mkdir()

    summary = harness.run_ok(RUN_DATE, DEANERY)

    assert summary["files_written_by_this_run"] == [harness.file_name(DEANERY, RUN_DATE, 1)]
    assert not stale.exists()
    assert recent.is_dir()
    assert set(exported_rows(harness)) == {harness.reference(r) for r in records}
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)
