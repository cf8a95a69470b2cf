"""ESR's confirmation files (APC, DCC): the documented layout, golden files, the parser's quarantine of
lines that cannot be trusted, and how a confirmation is matched to the export file it answers."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from esr_export_dagster.domain.confirmation_file import (
    APC_LAYOUT,
    DCC_LAYOUT,
    LOADED,
    LOADED_WITH_WARNINGS,
    REJECTED,
    ConfirmationLine,
    Holding,
    UnreadableConfirmationError,
    match_confirmation,
    parse_confirmation,
    parse_confirmation_file_name,
    render_confirmation_file,
)

from .conftest import PROJECT_ROOT

GOLDEN = PROJECT_ROOT / "esr_export_dagster_tests" / "golden"
APC_NAME = "DE_EOE_APC_20210801_00000142.DAT"
DCC_NAME = "DE_EOE_DCC_20210801_00000077.DAT"
# A message quoting a name, as ESR's can: it must never appear in a reason.
PERSONAL_TEXT = 'Applicant "Okonkwo" already exists'

APC_LINES = (
    ConfirmationLine(
        1, 500001, "SUCCESS", "INFO", "Applicant loaded", "EOE/RGT00/021/FY1/010", 9001, 7001, 7600001, 300001, 1
    ),
    ConfirmationLine(
        2,
        500002,
        "SUCCESS",
        "WARNING",
        "Projected end date defaulted",
        "EOE/RGT00/022/FY1/011",
        9002,
        7002,
        7600002,
        300002,
        2,
    ),
    ConfirmationLine(
        3, 500003, "FAIL", "ERROR", PERSONAL_TEXT, "EOE/RGT00/023/FY1/012", None, None, 7600003, 300003, 3
    ),
)
DCC_LINES = (
    ConfirmationLine(1, 900001, "SUCCESS", "", ""),
    ConfirmationLine(2, 900002, "FAIL", "ERROR", "Position not found"),
)


def test_the_apc_golden_file_is_what_esr_sends_and_what_the_parser_reads():
    golden = (GOLDEN / "apc_file.DAT").read_bytes()
    assert render_confirmation_file(APC_LAYOUT, APC_LINES) == golden
    parsed = parse_confirmation(APC_NAME, golden)
    assert parsed.applied == APC_LINES
    assert parsed.quarantined == ()
    assert [line.outcome for line in parsed.applied] == [LOADED, LOADED_WITH_WARNINGS, REJECTED]


def test_the_dcc_golden_file_is_what_esr_sends_and_what_the_parser_reads():
    golden = (GOLDEN / "dcc_file.DAT").read_bytes()
    assert render_confirmation_file(DCC_LAYOUT, DCC_LINES) == golden
    parsed = parse_confirmation(DCC_NAME, golden)
    assert parsed.applied == DCC_LINES
    assert [line.outcome for line in parsed.applied] == [LOADED, REJECTED]


_ROW = re.compile(r"^\| (\d+) \| (\w+) \| ", re.MULTILINE)


def test_confirmation_layout_doc_matches_the_code():
    text = (PROJECT_ROOT / "docs" / "confirmation-file-layout.md").read_text(encoding="utf-8")
    apc, dcc = text.split("## APC columns")[1].split("## DCC columns")
    dcc = dcc.split("## What a line means")[0]
    for section, layout in ((apc, APC_LAYOUT), (dcc, DCC_LAYOUT)):
        rows = _ROW.findall(section)
        assert [name for _, name in rows] == ["recordType", *layout.columns]
        assert [int(n) for n, _ in rows] == list(range(1, len(layout.columns) + 2))


def test_confirmation_file_names_are_read_and_other_names_refused():
    parsed = parse_confirmation_file_name(APC_NAME)
    assert (parsed.deanery, parsed.file_type, parsed.run_date, parsed.sequence) == (
        "EOE",
        "APC",
        dt.date(2021, 8, 1),
        142,
    )
    for other in (
        "DE_EOE_APP_20210801_00000001.DAT",
        "DE_XXX_APC_20210801_1.DAT",
        "DE_EOE_APC_20211301_1.DAT",
        "../DE_EOE_APC_20210801_1.DAT",
        "notes.txt",
    ):
        with pytest.raises(ValueError):
            parse_confirmation_file_name(other)


def _apc(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


GOOD = 'APC,"EOE/1",SUCCESS,INFO,"ok",9001,7001,7600001,300001,500001,1'


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('APC,"EOE/1",SUCCESS,INFO,"Okonkwo",9001,7001,7600001,300001,500002', "10 fields, expected 11"),
        ('APC,"EOE/1",SUCCESS,INFO,"Okonkwo",9001,7001,7600001,300001,500002,2,extra', "12 fields, expected 11"),
        ('APC,"EOE/1",LOADED,INFO,"Okonkwo",9001,7001,7600001,300001,500002,2', "loadStatusCode is not one of"),
        ('APC,"EOE/1",SUCCESS,NOTICE,"Okonkwo",9001,7001,7600001,300001,500002,2', "messageType is not one of"),
        ('APC,"EOE/1",FAIL,ERROR,"Okonkwo",,,7600001,300001,P500002,2', "vacancyRefNumber is not a whole number"),
        ('APC,"EOE/1",FAIL,ERROR,"Okonkwo",,,7600001,300001,,2', "vacancyRefNumber (the TIS reference) is empty"),
        ('APC,"EOE/1",SUCCESS,INFO,"Okonkwo",A9001,7001,7600001,300001,500002,2', "applicantNumber is not a whole"),
        ('APP,"EOE/1",SUCCESS,INFO,"Okonkwo",9001,7001,7600001,300001,500002,2', "record type is not APC"),
        ('APC,"EOE/1,SUCCESS,INFO,"Okonkwo",9001,7001,7600001,300001,500002,2', "not a valid CSV line"),
    ],
    ids=[
        "too-few",
        "too-many",
        "unknown-status",
        "unknown-message-type",
        "reference-not-a-number",
        "reference-empty",
        "applicant-number-not-a-number",
        "wrong-record-type",
        "unbalanced-quotes",
    ],
)
def test_a_malformed_line_is_quarantined_by_number_and_reason_and_the_rest_applied(bad_line, reason):
    parsed = parse_confirmation(APC_NAME, _apc(GOOD, bad_line, GOOD.replace("500001", "500003")))

    assert [line.reference for line in parsed.applied] == [500001, 500003]
    (quarantined,) = parsed.quarantined
    assert quarantined.line_number == 2
    assert reason in quarantined.reason
    assert "Okonkwo" not in quarantined.reason and "EOE/1" not in quarantined.reason


def test_a_dcc_reference_that_is_not_a_number_is_quarantined():
    parsed = parse_confirmation(DCC_NAME, b'DCC,900001,SUCCESS,INFO,""\nDCC,N-900002,FAIL,ERROR,"x"\n')
    assert [line.reference for line in parsed.applied] == [900001]
    assert [(q.line_number, q.reason) for q in parsed.quarantined] == [
        (2, "notificationReference is not a whole number")
    ]


def test_an_empty_file_is_valid_and_applies_nothing():
    for content in (b"", b"\n", b"\r\n\r\n"):
        parsed = parse_confirmation(DCC_NAME, content)
        assert parsed.applied == () and parsed.quarantined == ()


def test_crlf_lines_and_a_byte_order_mark_are_read():
    parsed = parse_confirmation(APC_NAME, b"\xef\xbb\xbf" + _apc(GOOD).replace(b"\n", b"\r\n"))
    assert [line.reference for line in parsed.applied] == [500001]


@pytest.mark.parametrize("content", [b"APC,\xff\xfe,SUCCESS\n", b"APC\x00\x00\x01binary"], ids=["not-utf8", "nul"])
def test_a_file_that_is_not_text_cannot_be_read_at_all(content):
    with pytest.raises(UnreadableConfirmationError) as raised:
        parse_confirmation(APC_NAME, content)
    assert "APC" not in str(raised.value)


def test_a_confirmation_answers_the_file_holding_its_references_whatever_its_name():
    parsed = parse_confirmation(
        APC_NAME,
        _apc(*(GOOD.replace("500001", str(ref)) for ref in (500001, 500002, 500003, 500004, 500005))),
    )
    holdings = {
        # An older file of the same deanery also held 500001 (a record exported again after a change).
        500001: [
            Holding("r1", "DE_EOE_APP_20210731_00000007.DAT", "EOE"),
            Holding("r1-old", "DE_EOE_APP_20210730_00000003.DAT", "EOE"),
        ],
        500002: [Holding("r2", "DE_EOE_APP_20210731_00000007.DAT", "EOE")],
        500003: [Holding("r3", "DE_LDN_APP_20210731_00000009.DAT", "LDN")],
        500004: [Holding("r4", "DE_EOE_APP_20210730_00000003.DAT", "EOE")],
    }

    matching = match_confirmation(parsed, holdings, "APP")

    assert matching.export_file == "DE_EOE_APP_20210731_00000007.DAT"
    assert [(line.reference, record) for line, record in matching.matched] == [(500001, "r1"), (500002, "r2")]
    assert [(u.line_number, u.reference, u.reason) for u in matching.unmatched] == [
        (3, 500003, "the record belongs to another deanery"),
        (4, 500004, "the record is not in the answered file DE_EOE_APP_20210731_00000007.DAT"),
        (5, 500005, "no exported record has this reference"),
    ]


def test_a_confirmation_matching_nothing_answers_no_file():
    parsed = parse_confirmation(APC_NAME, _apc(GOOD))
    matching = match_confirmation(parsed, {}, "APP")
    assert matching.export_file is None and matching.matched == ()
    assert [u.reference for u in matching.unmatched] == [500001]
