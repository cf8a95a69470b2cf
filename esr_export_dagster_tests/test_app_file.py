"""The APP file's name and line layout, pinned by a golden file (no MongoDB, no Dagster).

Every value below is fictitious: QQ-prefixed NINOs, Ofcom drama telephone numbers, ZZ99 postcodes and
.invalid e-mail addresses are reserved for exactly this.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest

from esr_export_dagster.domain.app_file import APP_COLUMNS, render_app_file, render_app_line
from esr_export_dagster.domain.deaneries import DEANERIES, UnknownDeaneryError
from esr_export_dagster.domain.esr_csv import ExportFileName, RenderReport, export_file_name, parse_export_file_name

GOLDEN = Path(__file__).parent / "golden" / "app_file.DAT"
RUN_DATE = dt.date(2021, 7, 31)
COLUMN_NAMES = [column.name for column in APP_COLUMNS]


def full_record() -> dict[str, Any]:
    """Every column filled, with the awkward cases: quotes, a comma, non-ASCII, an empty string, a null."""
    return {
        "_id": "golden-1",
        "placementId": 4_200_017,
        "positionId": 318_204,
        "positionNumber": 11_223,
        "deaneryPostNumber": "EOE/RGT00/021/F1/003",
        "startDate": dt.datetime(2021, 8, 4),
        "deanery": "EOE",
        "status": "TO_EXPORT",
        "applicant": {
            "effectiveDate": dt.datetime(2021, 8, 4),
            "projectedHireDate": dt.datetime(2021, 8, 4, 9, 30),
            "projectedEndDate": "2022-08-02",
            "title": "Dr",
            "lastName": "O'Quillfeather",
            "firstName": 'Marigold "Goldie"',
            "middleNames": "Zoë Ann",
            "previousLastName": None,
            "gender": "Female",
            "dob": dt.datetime(1994, 3, 17),
            "maritalStatus": "Single",
            "nationality": "British",
            "countryOfBirth": "United Kingdom",
            "ukNino": "QQ123456C",
            "nationalTrainingNumber": "EOE/101/200/F1",
            "professionalBodies": [
                {"body": "GMC", "regNumber": "0000001", "expiryDate": dt.datetime(2022, 3, 31)},
                {"body": "GDC", "regNumber": "0000002", "expiryDate": dt.datetime(2023, 1, 1)},
            ],
            "address": {
                "address1": "1, Fictional Row",
                "town": "Nowhere-on-Sea",
                "county": "",
                "postcode": "ZZ99 9ZZ",
                "country": "England",
            },
            "homeTel": "01632 960000",
            "mobileTel": "07700 900000",
            "applicantEmailAddress": "marigold@example.invalid",
            "ethnicOriginCode": "Z",
            "religiousBelief": "I do not wish to disclose this",
            "sexualOrientation": "Not stated",
            "disability": "No",
            "contactTitle": "Mr",
            "contactFirstName": "Barnaby",
            "contactLastName": "Quillfeather",
            "contactGender": "Male",
            "contactHomePhone": "01632 960001",
        },
    }


def minimal_record() -> dict[str, Any]:
    """Only the mandatory fields, dates as ISO strings, no professional body and no address."""
    return {
        "_id": "golden-2",
        "placementId": 4_200_018,
        "positionId": 7,
        "positionNumber": 99,
        "deaneryPostNumber": 'EOE/"X",Y',
        "startDate": dt.datetime(2021, 8, 11),
        "applicant": {
            "effectiveDate": "2021-08-11",
            "lastName": "de la Quill",
            "firstName": "Ada",
            "dob": "1988-12-01T00:00:00",
            "professionalBodies": [],
        },
    }


def fields_of(line: str) -> list[str]:
    (fields,) = csv.reader(io.StringIO(line))
    return fields


_RAW_FIELD = re.compile(r'"(?:[^"]|"")*"|[^,"]*')


def raw_fields_of(line: str) -> list[str]:
    """The fields exactly as written, quotes included; a comma inside quotes does not split."""
    fields, position = [], 0
    while True:
        match = _RAW_FIELD.match(line, position)
        fields.append(match.group())
        position = match.end()
        if position == len(line):
            return fields
        assert line[position] == ",", f"malformed field at {position}"
        position += 1


# --- the golden file -------------------------------------------------------------------------------------


def test_the_rendered_file_matches_the_golden_file_byte_for_byte():
    content, report = render_app_file([full_record(), minimal_record()])

    assert content == GOLDEN.read_bytes(), (
        "The APP file layout changed. If that is intended, render the records again, inspect the result "
        "against docs/app-file-layout.md and replace esr_export_dagster_tests/golden/app_file.DAT."
    )
    assert report.normalised_fields == {}


def test_the_golden_file_has_one_line_per_record_and_no_header_or_trailer():
    content = GOLDEN.read_bytes()

    assert content.endswith(b"\n")
    assert b"\r" not in content
    lines = content.decode("utf-8").split("\n")
    assert lines[-1] == ""
    assert len(lines[:-1]) == 2
    assert all(line.startswith("APP,") for line in lines[:-1])


def test_the_golden_file_is_utf8_without_a_byte_order_mark():
    content = GOLDEN.read_bytes()

    assert not content.startswith(b"\xef\xbb\xbf")
    assert "Zoë".encode() in content
    content.decode("utf-8")  # raises if it is not


def test_the_golden_file_reads_back_as_the_records_values():
    lines = GOLDEN.read_text(encoding="utf-8").splitlines()
    full = dict(zip(["recordType", *COLUMN_NAMES], fields_of(lines[0]), strict=True))
    minimal = dict(zip(["recordType", *COLUMN_NAMES], fields_of(lines[1]), strict=True))

    assert full["recordType"] == "APP"
    assert full["vacancyReference"] == "4200017"
    assert full["firstName"] == 'Marigold "Goldie"'
    assert full["middleNames"] == "Zoë Ann"
    assert full["previousLastName"] == ""
    assert full["projectedHireDate"] == "2021-08-04"
    assert full["projectedEndDate"] == "2022-08-02"
    assert full["professionalBody"] == "GMC"  # only the first body is carried
    assert full["professionalRegistrationExpiryDate"] == "2022-03-31"
    assert full["address1"] == "1, Fictional Row"
    assert full["contactHomePhone"] == "01632 960001"
    assert minimal["deaneryPostNumber"] == 'EOE/"X",Y'
    assert minimal["dob"] == "1988-12-01"
    assert {name for name, value in minimal.items() if value == ""} == set(COLUMN_NAMES) - {
        "vacancyReference",
        "positionId",
        "positionNumber",
        "deaneryPostNumber",
        "effectiveDate",
        "lastName",
        "firstName",
        "dob",
    }


def test_every_golden_field_follows_the_quoting_rule_of_its_column():
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        raw = raw_fields_of(line)
        assert raw[0] == "APP"
        assert len(raw) == 1 + len(APP_COLUMNS)
        for column, field in zip(APP_COLUMNS, raw[1:], strict=True):
            if field == "":
                continue  # missing
            if column.kind == "text":
                assert re.fullmatch(r'"(?:[^"]|"")*"', field), column.name
            elif column.kind == "integer":
                assert re.fullmatch(r"[1-9][0-9]*", field), column.name
            else:
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", field), column.name
                dt.date.fromisoformat(field)


# --- the line layout -------------------------------------------------------------------------------------


def test_a_line_has_the_record_type_then_one_field_per_column():
    for record in (full_record(), minimal_record()):
        fields = fields_of(render_app_line(record))
        assert len(fields) == 1 + len(APP_COLUMNS)
        assert fields[0] == "APP"


def test_the_record_type_is_written_unquoted_first():
    assert render_app_line(full_record()).startswith("APP,4200017,")


def test_the_placement_id_is_the_second_field():
    assert COLUMN_NAMES[0] == "vacancyReference"
    assert APP_COLUMNS[0].source == "placementId"
    assert raw_fields_of(render_app_line(full_record()))[1] == "4200017"
    assert raw_fields_of(render_app_line(minimal_record()))[1] == "4200018"


def test_integers_and_dates_are_unquoted_and_text_is_quoted():
    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(full_record()))[1:], strict=True))

    assert raw["positionId"] == "318204"
    assert raw["positionNumber"] == "11223"
    assert raw["effectiveDate"] == "2021-08-04"
    assert raw["dob"] == "1994-03-17"
    assert raw["title"] == '"Dr"'
    assert raw["ukNino"] == '"QQ123456C"'
    assert raw["lastName"] == '"O\'Quillfeather"'


def test_an_embedded_double_quote_is_doubled():
    record = full_record()
    record["applicant"]["firstName"] = 'She said "hi"'

    raw = raw_fields_of(render_app_line(record))

    assert raw[1 + COLUMN_NAMES.index("firstName")] == '"She said ""hi"""'


def test_a_missing_value_is_an_empty_unquoted_field():
    record = full_record()
    del record["applicant"]["title"]
    record["applicant"]["dob"] = None
    del record["positionId"]
    record["applicant"]["address"] = None

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record))[1:], strict=True))

    assert raw["title"] == ""
    assert raw["dob"] == ""
    assert raw["positionId"] == ""
    assert raw["address1"] == raw["town"] == raw["postcode"] == ""


def test_a_line_never_carries_its_line_ending_and_the_file_ends_each_line_with_one():
    line = render_app_line(full_record())
    content, _ = render_app_file([minimal_record(), full_record(), minimal_record()])

    assert "\n" not in line
    assert content.count(b"\n") == 3
    assert content.split(b"\n")[1] == line.encode("utf-8")


def test_records_are_written_in_the_order_given():
    content, _ = render_app_file([minimal_record(), full_record()])

    assert [raw_fields_of(line)[1] for line in content.decode("utf-8").splitlines()] == ["4200018", "4200017"]


def test_no_records_make_an_empty_file():
    content, report = render_app_file([])

    assert content == b""
    assert report.normalised_fields == {}


def test_a_value_under_something_that_is_not_a_subdocument_or_list_is_an_empty_field():
    shapes = [
        {"address": "1 Fictional Row", "professionalBodies": "GMC"},
        {"address": ["1 Fictional Row"], "professionalBodies": {"0": {"body": "GMC"}}},
        {"address": {"town": None}, "professionalBodies": []},
    ]
    for shape in shapes:
        record = full_record()
        record["applicant"].update(shape)
        report = RenderReport({})

        raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

        assert raw["address1"] == raw["town"] == raw["postcode"] == ""
        assert raw["professionalBody"] == raw["professionalRegistrationNumber"] == ""
        assert raw["professionalRegistrationExpiryDate"] == ""
        assert raw["lastName"] == f'"{full_record()["applicant"]["lastName"]}"'
        assert report.normalised_fields == {}


def test_a_record_whose_applicant_is_not_a_subdocument_renders_its_top_level_columns_only():
    for applicant in (None, "someone", ["someone"]):
        record = full_record()
        record["applicant"] = applicant

        raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record))[1:], strict=True))

        assert raw["vacancyReference"] == str(record["placementId"])
        assert raw["deaneryPostNumber"] == f'"{record["deaneryPostNumber"]}"'
        assert raw["lastName"] == raw["dob"] == raw["town"] == raw["professionalBody"] == ""


def test_unusual_but_printable_text_is_written_unchanged_and_not_reported():
    record = full_record()
    record["applicant"]["firstName"] = "Zo\u00eb\u00a0Anne"
    record["applicant"]["lastName"] = "\u00c5str\u00f6m-\u4e2d"
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["firstName"] == '"Zo\u00eb\u00a0Anne"'
    assert raw["lastName"] == '"\u00c5str\u00f6m-\u4e2d"'
    assert report.normalised_fields == {}


# --- normalisation ---------------------------------------------------------------------------------------


def test_control_characters_become_one_space_and_are_reported_by_column_name():
    record = full_record()
    record["applicant"]["firstName"] = "Mari\ngold"
    record["applicant"]["address"]["address1"] = "1 Fictional Row\r\nFlat\t2"
    other = minimal_record()
    other["applicant"]["lastName"] = "de la\x00Quill\x7f"

    content, report = render_app_file([record, other, full_record()])

    lines = content.decode("utf-8").split("\n")
    assert len(lines) == 4 and lines[-1] == ""
    first = dict(zip(COLUMN_NAMES, fields_of(lines[0])[1:], strict=True))
    second = dict(zip(COLUMN_NAMES, fields_of(lines[1])[1:], strict=True))
    assert first["firstName"] == "Mari gold"
    assert first["address1"] == "1 Fictional Row Flat 2"
    assert second["lastName"] == "de la Quill "
    assert report.normalised_fields == {"firstName": 1, "address1": 1, "lastName": 1}


def test_the_report_names_columns_and_never_values():
    record = full_record()
    record["applicant"]["firstName"] = "Secretname\nPrivate"

    _, report = render_app_file([record, record])

    assert report.normalised_fields == {"firstName": 2}
    assert "Secretname" not in repr(report)


def test_a_malformed_integer_or_date_is_written_empty_and_reported():
    record = full_record()
    record["positionId"] = "318204"
    record["positionNumber"] = True
    record["applicant"]["dob"] = "17/03/1994"
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["positionId"] == raw["positionNumber"] == raw["dob"] == ""
    assert report.normalised_fields == {"positionId": 1, "positionNumber": 1, "dob": 1}


# --- the file name ---------------------------------------------------------------------------------------


def test_the_file_name_carries_deanery_type_run_date_and_an_eight_digit_sequence():
    assert export_file_name("EOE", "APP", RUN_DATE, 1) == "DE_EOE_APP_20210731_00000001.DAT"
    assert export_file_name("MER", "APP", dt.date(2022, 1, 5), 2766) == "DE_MER_APP_20220105_00002766.DAT"
    assert export_file_name("YHD", "APP", RUN_DATE, 99_999_999) == "DE_YHD_APP_20210731_99999999.DAT"


@pytest.mark.parametrize("sequence", [0, -1, 100_000_000, 10**12])
def test_a_sequence_that_does_not_fit_eight_digits_is_refused(sequence):
    with pytest.raises(ValueError, match="8-digit file sequence"):
        export_file_name("EOE", "APP", RUN_DATE, sequence)


@pytest.mark.parametrize("deanery", ["XYZ", "eoe", "", "HEE", "../EOE", "EOE/..", "NW"])
def test_an_unknown_deanery_is_refused(deanery):
    with pytest.raises(UnknownDeaneryError, match="Unknown deanery code"):
        export_file_name(deanery, "APP", RUN_DATE, 1)
    assert issubclass(UnknownDeaneryError, ValueError)


@pytest.mark.parametrize("deanery", DEANERIES)
def test_a_file_name_parses_back_to_what_made_it(deanery):
    for run_date, sequence in ((RUN_DATE, 1), (dt.date(2024, 2, 29), 42), (dt.date(1999, 12, 31), 99_999_999)):
        name = export_file_name(deanery, "APP", run_date, sequence)
        assert parse_export_file_name(name) == ExportFileName(deanery, "APP", run_date, sequence)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "..",
        "../DE_EOE_APP_20210731_00000001.DAT",
        "DE_EOE_APP_20210731_00000001.DAT/../../x",
        "sub/DE_EOE_APP_20210731_00000001.DAT",
        "/etc/DE_EOE_APP_20210731_00000001.DAT",
        "DE_EOE_APP_20210731_00000001.dat",
        "de_EOE_APP_20210731_00000001.DAT",
        "DE_EOE_APP_20210731_1.DAT",
        "DE_EOE_APP_20210731_000000001.DAT",
        "DE_EOE_APP_2021073_00000001.DAT",
        "DE_EOE_APP_20210731_00000001.DAT.tmp",
        ".partial-DE_EOE_APP_20210731_00000001.DAT",
        " DE_EOE_APP_20210731_00000001.DAT",
        "DE_EOE_APP_20210731_00000001.DAT ",
        "DE_EOE_AP_20210731_00000001.DAT",
        "DE_XYZ_APP_20210731_00000001.DAT",
        "DE_EOE_APP_20211331_00000001.DAT",
        "DE_EOE_APP_20210230_00000001.DAT",
    ],
)
def test_anything_but_an_export_file_name_is_rejected(name):
    with pytest.raises(ValueError):
        parse_export_file_name(name)


def test_a_file_name_with_a_trailing_newline_is_rejected():
    with pytest.raises(ValueError):
        parse_export_file_name("DE_EOE_APP_20210731_00000001.DAT\n")


# --- hostile text ----------------------------------------------------------------------------------------


def _line_breakers() -> list[str]:
    """Every character Python's str.splitlines breaks a line on, found by asking it."""
    return [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1]


def test_every_character_a_line_splitter_breaks_on_becomes_a_space_and_is_reported():
    breakers = _line_breakers()
    assert {"\n", "\r", "\x85", "\u2028", "\u2029"} <= set(breakers)
    records = []
    for breaker in breakers:
        record = full_record()
        record["applicant"]["firstName"] = f"Mari{breaker}gold"
        records.append(record)

    content, report = render_app_file(records)

    text = content.decode("utf-8")
    assert len(text.splitlines()) == len(breakers)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == len(breakers)
    assert {dict(zip(COLUMN_NAMES, row[1:], strict=True))["firstName"] for row in rows} == {"Mari gold"}
    assert report.normalised_fields == {"firstName": len(breakers)}


@pytest.mark.parametrize("control", [chr(c) for c in range(0x80, 0xA0)], ids=lambda c: f"U+{ord(c):04X}")
def test_a_c1_control_character_becomes_a_space_and_is_reported(control):
    record = full_record()
    record["applicant"]["address"]["town"] = f"Nowhere{control}{control}on-Sea"
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["town"] == '"Nowhere on-Sea"'
    assert report.normalised_fields == {"town": 1}


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_a_formula_like_prefix_is_written_verbatim_and_not_reported(prefix):
    # ESR's loader reads the file as data, never as a spreadsheet: a quote or space added to defuse a
    # formula would change the name ESR loads (docs/app-file-layout.md, "Formula-like values").
    record = full_record()
    record["applicant"]["lastName"] = f'{prefix}HYPERLINK("http://example.invalid","x")'
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["lastName"] == f'"{prefix}HYPERLINK(""http://example.invalid"",""x"")"'
    assert report.normalised_fields == {}


def test_a_leading_tab_or_carriage_return_is_a_control_character_like_any_other():
    record = full_record()
    record["applicant"]["lastName"] = "\t=1+2"
    record["applicant"]["firstName"] = "\r=1+2"
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["lastName"] == raw["firstName"] == '" =1+2"'
    assert report.normalised_fields == {"lastName": 1, "firstName": 1}


@pytest.mark.parametrize(
    "value",
    [
        {"line": "1 Fictional Row"},
        ["1 Fictional Row"],
        [],
        {},
        True,
        False,
        dt.datetime(1994, 3, 17, 9, 30),
        dt.date(1994, 3, 17),
        b"1 Fictional Row",
        float("nan"),
        float("inf"),
    ],
    ids=repr,
)
def test_a_value_that_is_not_text_or_a_number_in_a_text_column_is_written_empty_and_reported(value):
    record = full_record()
    record["applicant"]["address"]["address1"] = value
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["address1"] == ""
    assert report.normalised_fields == {"address1": 1}


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (12345, "12345"),
        (-7, "-7"),
        (0, "0"),
        (1632960000.0, "1632960000"),
        (0.5, "0.5"),
        (1e-7, "0.0000001"),
        (1e22, "10000000000000000000000"),
        (2**63 - 1, "9223372036854775807"),
    ],
)
def test_a_number_in_a_text_column_is_written_quoted_in_plain_decimal_digits(value, written):
    record = full_record()
    record["applicant"]["address"]["postcode"] = value
    report = RenderReport({})

    raw = dict(zip(COLUMN_NAMES, raw_fields_of(render_app_line(record, report))[1:], strict=True))

    assert raw["postcode"] == f'"{written}"'
    assert report.normalised_fields == {}
