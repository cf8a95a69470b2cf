"""What a GeneratedAppRecord must hold to be exported, and how its errors are worded (no MongoDB, no Dagster).

Every value below is fictitious.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from esr_export_dagster.domain.app_file import APP_COLUMNS, render_app_line
from esr_export_dagster.domain.records import (
    EXPORT_MANDATORY_FIELDS,
    field_value,
    generation_error,
    invalid_mandatory_fields,
    parse_date,
)

CONTRACT_ORDER = [
    "placementId",
    "applicant.effectiveDate",
    "applicant.lastName",
    "applicant.firstName",
    "applicant.dob",
    "positionId",
    "positionNumber",
    "startDate",
    "deaneryPostNumber",
]


def valid_record() -> dict[str, Any]:
    return {
        "_id": "rec-0001",
        "placementId": 4_200_017,
        "positionId": 318_204,
        "positionNumber": 11_223,
        "deaneryPostNumber": "EOE/RGT00/021/F1/003",
        "startDate": dt.datetime(2021, 8, 4),
        "applicant": {
            "effectiveDate": dt.datetime(2021, 8, 4),
            "lastName": "Quillfeather",
            "firstName": "Marigold",
            "dob": dt.datetime(1994, 3, 17),
        },
    }


def with_value(dotted: str, value: Any) -> dict[str, Any]:
    """A valid record with one (possibly nested) field set to ``value``."""
    record = valid_record()
    *parents, leaf = dotted.split(".")
    target = record
    for part in parents:
        target = target[part]
    target[leaf] = value
    return record


def without(*dotted_names: str) -> dict[str, Any]:
    record = valid_record()
    for dotted in dotted_names:
        *parents, leaf = dotted.split(".")
        target = record
        for part in parents:
            target = target[part]
        del target[leaf]
    return record


# --- the mandatory set -----------------------------------------------------------------------------------


def test_the_mandatory_fields_are_the_contracts_in_its_order():
    assert list(EXPORT_MANDATORY_FIELDS) == CONTRACT_ORDER


def test_a_complete_record_has_no_invalid_fields():
    assert invalid_mandatory_fields(valid_record()) == []


def test_an_empty_record_names_every_mandatory_field_in_contract_order():
    assert invalid_mandatory_fields({}) == CONTRACT_ORDER


def test_a_record_without_an_applicant_names_every_applicant_field():
    record = valid_record()
    del record["applicant"]

    assert invalid_mandatory_fields(record) == [
        "applicant.effectiveDate",
        "applicant.lastName",
        "applicant.firstName",
        "applicant.dob",
    ]


@pytest.mark.parametrize("name", CONTRACT_ORDER)
def test_a_missing_mandatory_field_is_named(name):
    assert invalid_mandatory_fields(without(name)) == [name]


@pytest.mark.parametrize("name", CONTRACT_ORDER)
def test_a_null_mandatory_field_is_named(name):
    assert invalid_mandatory_fields(with_value(name, None)) == [name]


def test_several_invalid_fields_are_named_in_contract_order_not_document_order():
    record = without("deaneryPostNumber", "applicant.dob", "placementId")
    record["positionNumber"] = "11223"
    # Rebuild the document so its keys run in the reverse of the contract order.
    reversed_record = dict(reversed(list(record.items())))

    assert invalid_mandatory_fields(reversed_record) == [
        "placementId",
        "applicant.dob",
        "positionNumber",
        "deaneryPostNumber",
    ]


# --- names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", " ", "   ", "\t", "\n"])
@pytest.mark.parametrize("name", ["applicant.lastName", "applicant.firstName"])
def test_a_blank_name_is_invalid(name, blank):
    assert invalid_mandatory_fields(with_value(name, blank)) == [name]


@pytest.mark.parametrize("not_text", [42, 3.5, ["Marigold"], {"given": "Marigold"}, b"Marigold"])
def test_a_name_that_is_not_text_is_invalid(not_text):
    assert invalid_mandatory_fields(with_value("applicant.firstName", not_text)) == ["applicant.firstName"]


def test_a_name_with_surrounding_spaces_is_still_a_name():
    assert invalid_mandatory_fields(with_value("applicant.lastName", "  Quillfeather ")) == []


@pytest.mark.parametrize("blank", ["\x00", "\x07\x1b", "\x80\x9f", "\x00 \x01", "\x7f\u2028", " \x1b "])
@pytest.mark.parametrize("name", ["applicant.lastName", "applicant.firstName"])
def test_a_name_of_control_characters_only_is_invalid_because_it_would_be_written_blank(name, blank):
    record = with_value(name, blank)
    position = 1 + [c.name for c in APP_COLUMNS].index(name.split(".")[1])

    assert invalid_mandatory_fields(record) == [name]
    assert render_app_line(record).split(",")[position].strip('"').strip() == ""


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u00ad", "\u200d \u2060", " \u200b\x00"])
@pytest.mark.parametrize("name", ["applicant.lastName", "applicant.firstName"])
def test_a_name_of_invisible_format_characters_only_is_invalid_because_nobody_could_read_it(name, invisible):
    assert invalid_mandatory_fields(with_value(name, invisible)) == [name]


def test_a_name_with_a_format_character_inside_is_still_a_name():
    assert invalid_mandatory_fields(with_value("applicant.lastName", "Quill\u200dfeather")) == []


def test_a_name_with_a_control_character_inside_is_still_a_name():
    assert invalid_mandatory_fields(with_value("applicant.firstName", "Mari\x00gold\x85")) == []


# --- integers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["placementId", "positionId", "positionNumber"])
@pytest.mark.parametrize("boolean", [True, False])
def test_a_boolean_is_not_an_integer_identifier(name, boolean):
    assert invalid_mandatory_fields(with_value(name, boolean)) == [name]


@pytest.mark.parametrize(
    ("name", "digits"),
    [("placementId", 18), ("positionId", 15), ("positionNumber", 10)],
)
def test_an_identifier_with_more_digits_than_esr_allows_is_invalid(name, digits):
    assert invalid_mandatory_fields(with_value(name, 10**digits - 1)) == []
    assert invalid_mandatory_fields(with_value(name, 10**digits)) == [name]


@pytest.mark.parametrize("name", ["placementId", "positionId", "positionNumber"])
@pytest.mark.parametrize("value", [0, -1, -4_200_017])
def test_a_zero_or_negative_identifier_is_invalid(name, value):
    assert invalid_mandatory_fields(with_value(name, value)) == [name]


@pytest.mark.parametrize("name", ["placementId", "positionId", "positionNumber"])
@pytest.mark.parametrize("value", ["4200017", 4200017.0, "", [4200017]])
def test_an_identifier_that_is_not_an_int_is_invalid(name, value):
    assert invalid_mandatory_fields(with_value(name, value)) == [name]


def test_the_smallest_identifier_is_one():
    record = valid_record()
    record.update(placementId=1, positionId=1, positionNumber=1)

    assert invalid_mandatory_fields(record) == []


# --- dates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["applicant.effectiveDate", "applicant.dob"])
@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(1994, 3, 17),
        dt.datetime(1994, 3, 17, 13, 45),
        dt.date(1994, 3, 17),
        "1994-03-17",
        " 1994-03-17 ",
        "1994-03-17T00:00:00Z",
    ],
)
def test_a_bson_datetime_a_date_or_an_iso_string_is_a_valid_date(name, value):
    assert invalid_mandatory_fields(with_value(name, value)) == []


@pytest.mark.parametrize("name", ["applicant.effectiveDate", "applicant.dob"])
@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not a date",
        "17/03/1994",
        "1994-13-01",
        "1994-02-30",
        "1994-3-7",
        19940317,
        1994.0317,
        ["1994-03-17"],
    ],
)
def test_an_unparsable_date_is_invalid(name, value):
    assert invalid_mandatory_fields(with_value(name, value)) == [name]


def test_parse_date_reads_the_day_of_a_datetime_and_of_an_iso_string():
    assert parse_date(dt.datetime(1994, 3, 17, 23, 59)) == dt.date(1994, 3, 17)
    assert parse_date(dt.date(1994, 3, 17)) == dt.date(1994, 3, 17)
    assert parse_date("1994-03-17T08:00:00") == dt.date(1994, 3, 17)
    assert parse_date("1994-02-30") is None
    assert parse_date(None) is None
    assert parse_date(19940317) is None


@pytest.mark.parametrize("value", ["2021-08-04", dt.date(2021, 8, 4), 20210804])
def test_a_start_date_must_be_a_bson_datetime(value):
    assert invalid_mandatory_fields(with_value("startDate", value)) == ["startDate"]


# --- deanery post number ---------------------------------------------------------------------------------


def test_a_post_number_of_thirty_characters_is_valid_and_of_thirty_one_is_not():
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", "P" * 30)) == []
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", "P" * 31)) == ["deaneryPostNumber"]
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", "EOE/RGT00/021/F1/003/LONGER/XYZ")) == [
        "deaneryPostNumber"
    ]


@pytest.mark.parametrize("value", ["", "  ", "\t", 12345, ["EOE/RGT00/021/F1/003"]])
def test_a_blank_or_non_text_post_number_is_invalid(value):
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", value)) == ["deaneryPostNumber"]


@pytest.mark.parametrize("value", ["\x00", "\x80\x81", "\x1f \x7f"])
def test_a_post_number_of_control_characters_only_is_invalid(value):
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", value)) == ["deaneryPostNumber"]


def test_a_post_number_is_measured_as_written_once_control_characters_are_normalised():
    # Each run of control characters is written as one space: the length ESR sees is what counts.
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", "P" * 29 + "\r\n")) == []
    assert invalid_mandatory_fields(with_value("deaneryPostNumber", "P" * 29 + "\r\nQ")) == ["deaneryPostNumber"]


def test_a_post_number_that_passes_validation_fits_esrs_thirty_characters_in_the_file():
    record = with_value("deaneryPostNumber", "  " + "P" * 30 + "  ")
    position = 1 + [c.name for c in APP_COLUMNS].index("deaneryPostNumber")

    passes = invalid_mandatory_fields(record) == []
    written = render_app_line(record).split(",")[position].strip('"')

    assert not passes or len(written) <= 30


# --- field_value -----------------------------------------------------------------------------------------


def test_field_value_reads_nested_documents_as_mongodb_returns_them():
    record = valid_record()

    assert field_value(record, "applicant.lastName") == "Quillfeather"
    assert field_value(record, "placementId") == 4_200_017
    assert field_value({"a": {"b": {"c": 7}}}, "a.b.c") == 7


def test_a_top_level_key_spelled_like_a_dotted_path_is_not_the_field_the_file_writes():
    document = {"applicant.lastName": "Flat", "applicant": {"lastName": "Nested"}}
    flat_only = valid_record()
    flat_only["applicant.firstName"] = flat_only["applicant"].pop("firstName")

    assert field_value(document, "applicant.lastName") == "Nested"
    assert invalid_mandatory_fields(flat_only) == ["applicant.firstName"]


def test_field_value_is_none_for_anything_missing():
    assert field_value({}, "placementId") is None
    assert field_value({"applicant": {}}, "applicant.lastName") is None
    assert field_value({"applicant": None}, "applicant.lastName") is None
    assert field_value({"applicant": "Quillfeather"}, "applicant.lastName") is None
    assert field_value({"applicant": ["Quillfeather"]}, "applicant.lastName") is None


def test_a_record_stored_flat_is_judged_by_the_nested_fields_the_file_writes():
    nested = valid_record()
    flat = {key: value for key, value in nested.items() if key != "applicant"}
    flat.update({f"applicant.{key}": value for key, value in nested["applicant"].items()})

    assert invalid_mandatory_fields(flat) == [
        "applicant.effectiveDate",
        "applicant.lastName",
        "applicant.firstName",
        "applicant.dob",
    ]


# --- generation_error ------------------------------------------------------------------------------------


def test_the_generation_error_lists_the_invalid_fields_by_name():
    assert generation_error(["applicant.dob", "positionNumber"]) == (
        "Missing or invalid mandatory fields for the ESR APP file: applicant.dob, positionNumber"
    )


def test_the_generation_error_never_carries_a_value_of_the_record():
    record = valid_record()
    record["applicant"].update(
        lastName="   ",
        firstName=["Zebulon-Pettigrew"],
        dob="31/02/1987 Zebulon",
        effectiveDate="Pettigrew-day",
    )
    record["deaneryPostNumber"] = "ZEBULON/PETTIGREW/SECRET/POST/NUMBER/9"
    record["positionNumber"] = "778899"
    original = copy.deepcopy(record)

    message = generation_error(invalid_mandatory_fields(record))

    assert message == (
        "Missing or invalid mandatory fields for the ESR APP file: applicant.effectiveDate, applicant.lastName, "
        "applicant.firstName, applicant.dob, positionNumber, deaneryPostNumber"
    )
    for personal in ("Zebulon", "Pettigrew", "1987", "SECRET", "778899", "Marigold", "Quillfeather", "4200017"):
        assert personal not in message
    assert record == original  # checking reads, it never rewrites
