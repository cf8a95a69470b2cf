"""Property: whatever upstream writes, one partition's run ends in a clean state (issue 11, item 7).

Hypothesis generates a partition's worth of GeneratedAppRecords for one deanery, valid ones mixed with hostile
ones (wrong types in every field, start dates that are not dates, duplicate placement ids, control characters,
line separators, formula prefixes, very long strings, other statuses and deaneries), and each example runs one
partition of the real APP job against a fresh database on the real wire server. Afterwards every record is
EXPORTED in exactly one line of one file, INVALID_DATA with an error naming a field, or exactly as inserted;
every file is clean CSV; the export invariants hold; and no personal value reached the logs or the metadata.

Every value is fictitious (demo_data's records, decorated).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as dt
import io
import logging
import string
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import ObjectId
from dagster import DagsterInstance, serialize_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from pymongo.database import Database

from esr_export_dagster.domain.app_file import APP_COLUMNS
from esr_export_dagster.domain.records import (
    DELETED_BEFORE_EXPORT,
    EXPORT_MANDATORY_FIELDS,
    EXPORTED,
    INVALID_DATA,
    TO_EXPORT,
    parse_date,
)
from esr_export_dagster.local.demo_data import applicant_record
from esr_export_dagster.resources import ExportPolicyResource
from esr_export_dagster.storage.collections import APP_RECORDS

from .conftest import ExportHarness, failure_message
from .invariants import assert_export_invariants
from .test_personal_data import _appears, _stored_outputs, personal_values

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
DEANERY = "EMD"
OTHER_DEANERY = "EOE"
FIRST_PLACEMENT_ID = 500_001
WINDOW = ExportPolicyResource().window()
EXPORT_FILE_FIELDS = 1 + len(APP_COLUMNS)


class _Missing:
    """A field the record must not have at all (distinct from a stored null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

TEXT_PATHS = tuple(column.source for column in APP_COLUMNS if column.kind == "text")
MANDATORY_TEXT_PATHS = frozenset({"applicant.lastName", "applicant.firstName", "deaneryPostNumber"})
# Every field a line is made of and the sub-documents holding them (startDate, status and deanery are drawn
# on their own, with the values that decide eligibility).
FIELD_PATHS = (
    "placementId",
    "positionId",
    "positionNumber",
    "deaneryPostNumber",
    "applicant",
    *(column.source for column in APP_COLUMNS if "." in column.source),
    "applicant.address",
    "applicant.professionalBodies",
    "applicant.professionalBodies.0",
)
NESTED_MANDATORY_PATHS = tuple(name for name in EXPORT_MANDATORY_FIELDS if "." in name)
# Columns that must never be blank on a line: the mandatory fields as written (startDate has no column).
MANDATORY_COLUMNS = {
    1 + index: column.name for index, column in enumerate(APP_COLUMNS) if column.source in EXPORT_MANDATORY_FIELDS
}
# ESR's limit on the post number (records.py): a longer one is rightly INVALID_DATA, not a defect.
_MAX_POST_NUMBER_LENGTH = 30

# Pieces of hostile text put around (or in place of) a value: CSV syntax, C0 and C1 controls, Unicode line and
# paragraph separators, byte-order mark, bidi override, emoji with joiners, spreadsheet formula prefixes.
FRAGMENTS = (
    "",
    '"',
    '""',
    ",",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\x00",
    "\x1b[31m",
    "\x1c",
    "\x7f",
    "\x85",
    "\x9b",
    "\u2028",
    "\u2029",
    "\x0b\x0c",
    "\ufeff",
    "\u202e",
    "\U0001f600",
    "\U0001f469\u200d\u2695\ufe0f",
    "=1+1",
    "+",
    "-",
    "@",
    "'",
    "\\",
    ";",
)
# Characters with nothing to see: C0 and C1 controls, line and paragraph separators, zero-width space, BOM. A
# mandatory name made only of these is blank.
INVISIBLE_CHARACTERS = (
    "".join(chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]) + "\u2028\u2029\u200b\ufeff"
)
FORMULAS = ("=1+1", "+44 1632 960000", "-2+3", "@SUM(1,2)", '=HYPERLINK("http://example.invalid","x")')


@dataclass(repr=False)
class GeneratedRecord:
    """One record as inserted, the demo record it was made from, and what was made hostile in it."""

    document: dict[str, Any]
    pristine: dict[str, Any]
    # Dotted names of the fields given a hostile value (placementId too when it is shared with another record).
    hostile_fields: set[str] = field(default_factory=set)
    # Hostile fields whose value must still be exported (hostile text in optional columns, decorated names).
    exportable_fields: set[str] = field(default_factory=set)

    @property
    def placement_id(self) -> Any:
        return self.document.get("placementId", MISSING)

    def __repr__(self) -> str:
        """What makes this record differ from demo_data's, so that a falsifying example reads in a few lines."""
        doc = self.document
        shown = sorted(self.hostile_fields | {"_id", "placementId", "status", "deanery", "startDate"})
        fields = [
            f"{path} (flat key)={_short(doc[path], 120)}"
            if "." in path and path in doc
            else f"{path}={_short(_get(doc, path), 120)}"
            for path in shown
        ]
        return f"record({', '.join(fields)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def describe(self) -> str:
        """Ids and field names only, for assertion messages."""
        doc = self.document
        return (
            f"record _id={doc['_id']!r} placementId={_short(doc.get('placementId', MISSING))} "
            f"status={_short(doc.get('status', MISSING))} deanery={_short(doc.get('deanery', MISSING))} "
            f"startDate={_short(doc.get('startDate', MISSING))} hostile={sorted(self.hostile_fields)}"
        )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}...({len(text)} chars)"


# -- strategies -----------------------------------------------------------------------------------------

_milliseconds = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda value: value.replace(microsecond=value.microsecond // 1000 * 1000)
)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# Every wrong kind of value a field can hold.
wrong_values = st.one_of(
    st.just(MISSING),
    st.none(),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.dictionaries(
        st.text(string.ascii_letters, min_size=1, max_size=4), st.integers(-5, 5) | st.text(max_size=3), max_size=2
    ),
    st.lists(st.integers(-5, 5) | st.text(max_size=3), max_size=3),
    st.just(2**63 - 1),
    st.integers(max_value=-1, min_value=-(2**63)),
    _int64,
    _milliseconds,
)

_in_window = st.builds(
    lambda days, time: dt.datetime.combine(RUN_DATE + dt.timedelta(days=days), time),
    st.integers(2, 90),
    st.sampled_from([dt.time(0), dt.time(12, 30), dt.time(23, 59, 59, 999000)]),
)
_outside_window = st.sampled_from(
    [
        dt.datetime.combine(RUN_DATE + dt.timedelta(days=1), dt.time(23, 59, 59, 999000)),
        dt.datetime.combine(RUN_DATE + dt.timedelta(weeks=13), dt.time(0)),
        dt.datetime.combine(RUN_DATE - dt.timedelta(days=3), dt.time(0)),
        dt.datetime.combine(RUN_DATE + dt.timedelta(weeks=20), dt.time(0)),
        dt.datetime(1900, 1, 1),
        dt.datetime(2999, 12, 31),
    ]
)
start_dates = st.one_of(
    _in_window,
    _outside_window,
    _in_window.map(lambda value: value.date().isoformat()),
    _outside_window.map(lambda value: value.date().isoformat()),
    st.sampled_from(["31/08/2021", "", "next week", "2021-13-45", "2021-08-10T25:00", "0"]),
    st.just(None),
    st.just(MISSING),
    _int64,
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    _in_window.map(lambda value: {"date": value}),
    _in_window.map(lambda value: [value]),
)

# How a text field is made hostile: ("decorate", prefix, suffix) keeps the value inside hostile characters;
# the others replace it.
text_changes = st.one_of(
    st.tuples(st.just("decorate"), st.sampled_from(FRAGMENTS), st.sampled_from(FRAGMENTS)),
    st.tuples(st.just("replace"), st.text(INVISIBLE_CHARACTERS, min_size=1, max_size=3)),
    st.tuples(st.just("repeat"), st.sampled_from([300, 20_000])),
    st.tuples(st.just("formula"), st.sampled_from(FORMULAS)),
    st.tuples(st.just("replace"), st.text(max_size=30)),
)

mutations = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(TEXT_PATHS), text_changes),
    st.tuples(st.just("type"), st.sampled_from(FIELD_PATHS), wrong_values),
    # The field stored under a flat dotted key ("applicant.lastName": ...) instead of inside its sub-document.
    st.tuples(st.just("flat"), st.sampled_from(NESTED_MANDATORY_PATHS), st.none()),
)

STATUSES = (
    TO_EXPORT,
    TO_EXPORT,
    TO_EXPORT,
    TO_EXPORT,
    INVALID_DATA,
    DELETED_BEFORE_EXPORT,
    EXPORTED,
    None,
    "to_export",
    1,
)
DEANERY_VALUES = (DEANERY, DEANERY, DEANERY, DEANERY, OTHER_DEANERY, "emd", None, MISSING, "XXX")
DUPLICATE_KINDS = ("same", "exported_twin", "float_twin", "other_deanery_twin")


@st.composite
def applicant_records(draw: st.DrawFn, placement_id: int) -> GeneratedRecord:
    start = draw(_in_window)
    pristine = applicant_record(placement_id, DEANERY, start.date())
    document = copy.deepcopy(pristine)
    generated = GeneratedRecord(document, pristine)
    document["_id"] = draw(st.sampled_from([ObjectId(), f"gar-{placement_id}", placement_id * 10]))
    status = draw(st.sampled_from(STATUSES))
    document["status"] = status
    if status == INVALID_DATA:
        document["generationError"] = "Missing or invalid mandatory fields for the ESR APP file: applicant.dob"
    if status == EXPORTED:
        # Exported before this project's ledger existed: no file of it is in the export directory to check.
        document["exportedAt"] = dt.datetime(2021, 7, 1, 13, 0, 5)
    _set(document, "deanery", draw(st.sampled_from(DEANERY_VALUES)))
    # Most records are ordinary (and shrinking makes them so): each hostile part is drawn one time in four.
    if draw(st.integers(0, 3)) == 3:
        anchor = draw(start_dates)
        _set(document, "startDate", anchor)
        if not isinstance(anchor, dt.datetime):
            generated.hostile_fields.add("startDate")
    changes = draw(st.lists(mutations, min_size=1, max_size=3)) if draw(st.integers(0, 3)) >= 2 else []
    for kind, path, change in changes:
        if kind == "flat":
            value = _get(document, path)
            if value is MISSING or not _set(document, path, MISSING):
                continue
            document[path] = value
            generated.hostile_fields.add(path)
            continue
        if kind == "text":
            value = _hostile_text(_get(document, path), change)
            exportable = path not in MANDATORY_TEXT_PATHS or (
                _visible(value) and (path != "deaneryPostNumber" or len(value) <= _MAX_POST_NUMBER_LENGTH)
            )
        else:
            value, exportable = change, False
        if _set(document, path, value):
            generated.hostile_fields.add(path)
            if exportable:
                generated.exportable_fields.add(path)
            else:
                generated.exportable_fields.discard(path)
    return generated


@st.composite
def partitions(draw: st.DrawFn) -> list[GeneratedRecord]:
    """One deanery's day: records of every kind, some sharing a placement id."""
    count = draw(st.integers(1, 10))
    records = [draw(applicant_records(FIRST_PLACEMENT_ID + index)) for index in range(count)]
    if count > 1 and draw(st.integers(0, 2)) == 2:
        for kind in draw(st.lists(st.sampled_from(DUPLICATE_KINDS), min_size=1, max_size=2)):
            first, second = draw(st.permutations(range(count)))[:2]
            original, twin = records[first], records[second]
            reference = original.document.get("placementId", MISSING)
            if kind == "exported_twin":
                # Legacy history: the placement exported once already, and regenerated TO_EXPORT.
                original.document["status"] = EXPORTED
                original.document.pop("generationError", None)
                original.document.setdefault("exportedAt", dt.datetime(2021, 7, 1, 13, 0, 5))
                twin.document["status"] = TO_EXPORT
                twin.document.pop("generationError", None)
            if kind == "other_deanery_twin":
                twin.document["deanery"] = OTHER_DEANERY
            if kind == "float_twin" and isinstance(reference, int) and not isinstance(reference, bool):
                reference = float(reference)
            _set(twin.document, "placementId", reference)
    for record in records:
        if _shares_placement_id(record, records):
            record.hostile_fields.add("placementId")
    return records


def _hostile_text(current: Any, change: tuple) -> str:
    core = current if isinstance(current, str) else ""
    how = change[0]
    if how == "decorate":
        return change[1] + core + change[2]
    if how == "repeat":
        # A fixed length, whatever the value already was: repeating twice must not multiply it.
        length = change[1]
        return ((core or "x") * length)[:length]
    if how == "formula":
        return change[1] + core
    return change[1]


def _visible(text: str) -> bool:
    """Holds a character a reader can see: not a control, format, separator or space character."""
    return any(unicodedata.category(character)[0] not in "CZ" for character in text)


def _parts(path: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in path.split(".")]


def _get(document: Any, path: str) -> Any:
    value = document
    for part in _parts(path):
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def _set(document: dict[str, Any], path: str, value: Any) -> bool:
    """Set (or, with MISSING, remove) a nested field; False when an earlier change removed its parent."""
    *parents, leaf = _parts(path)
    target: Any = document
    for part in parents:
        target = _get(target, str(part))
        if target is MISSING:
            return False
    if isinstance(leaf, int):
        if not isinstance(target, list) or leaf >= len(target):
            return False
        if value is MISSING:
            del target[leaf]
        else:
            target[leaf] = value
        return True
    if not isinstance(target, dict):
        return False
    if value is MISSING:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return True


def _reference_key(value: Any) -> Any:
    """How a unique index compares two placement ids: numbers by value, anything else by type and value."""
    if value is MISSING or value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("number", value)
    return (type(value).__name__, repr(value))


def _shares_placement_id(record: GeneratedRecord, records: list[GeneratedRecord]) -> bool:
    key = _reference_key(record.placement_id)
    return key is not None and sum(_reference_key(other.placement_id) == key for other in records) > 1


# -- the property -------------------------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(records=partitions())
def test_a_partition_of_hostile_records_ends_each_record_exported_once_invalid_with_a_field_or_untouched(
    mongo_uri: str, records: list[GeneratedRecord]
):
    with scratch_database(mongo_uri) as (database, scratch):
        inserted = [copy.deepcopy(record.document) for record in records]
        database[APP_RECORDS].insert_many([copy.deepcopy(document) for document in inserted])
        stored_before = {document["_id"]: document for document in database[APP_RECORDS].find()}
        assert all(_same_bytes(stored_before[document["_id"]], document) for document in inserted), (
            "the server did not store the generated records as inserted"
        )
        # An in-memory instance of the example's own: an SQLite-backed one takes seconds to create, 25 times
        # over. It is closed before anything is asserted, so a failing example reads as one assertion.
        with DagsterInstance.ephemeral(tempdir=str(scratch / "dagster_home")) as instance:
            harness = ExportHarness(uri=mongo_uri, database=database, export_dir=scratch / "export", instance=instance)
            with collected_python_logs() as python_logs:
                result = harness.run(RUN_DATE, DEANERY)
            stored_outputs = _stored_outputs(harness)
            assert stored_outputs or not result.success, "the run's op outputs were not found in Dagster's storage"
            outcome = RunOutcome(
                success=result.success,
                failure=failure_message(result),
                logs={
                    "dagster event log (logs, metadata, errors)": "\n".join(
                        serialize_value(entry) for entry in instance.all_logs(result.run_id)
                    ),
                    "python logging": "\n".join(python_logs),
                    "stored op outputs": "\n".join(stored_outputs),
                    "asset output": serialize_value(harness.summary_of(result)) if result.success else "",
                },
            )

        stored = {document["_id"]: document for document in database[APP_RECORDS].find()}
        files = {path.name: path.read_bytes() for path in harness.export_dir.glob("DE_*.DAT")}
        _assert_nothing_personal_reached_logs_or_metadata(outcome, records)
        _assert_the_run_succeeded_or_failed_naming_the_duplicate(outcome, records)
        for record in records:
            _assert_record_exported_invalid_or_untouched(record, stored.get(record.document["_id"]), files)
            if outcome.success:
                _assert_nothing_silently_skipped(record, stored[record.document["_id"]], records)
        _assert_files_are_clean_csv(files, records, stored)
        _assert_no_number_burned_and_no_partial_file(harness, files)
        assert_export_invariants(database, harness.export_dir)


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    failure: str
    # Where the run wrote anything a person or a log shipper can read, by place.
    logs: dict[str, str]


def _assert_the_run_succeeded_or_failed_naming_the_duplicate(
    outcome: RunOutcome, records: list[GeneratedRecord]
) -> None:
    if outcome.success:
        return
    message = outcome.failure
    # Only shared placement ids may stop the deanery's run (issue 11: a clear failure of that deanery, naming
    # the reference); a wrong type in any field never fails a partition, and another deanery's duplicates
    # never stop this one.
    duplicates = {
        record.placement_id
        for record in records
        if _shares_placement_id(record, records) and record.document.get("deanery") == DEANERY
    }
    assert duplicates, f"the run failed on data that must not fail a partition: {message!r}"
    assert "placementId" in message or any(str(reference) in message for reference in duplicates), (
        f"the run failed over duplicate placement ids without naming them: {message!r}"
    )


def _assert_record_exported_invalid_or_untouched(
    record: GeneratedRecord, document: dict[str, Any] | None, files: dict[str, bytes]
) -> None:
    inserted = record.document
    assert document is not None, f"{record.describe()} was deleted"
    if _same_bytes(document, inserted):
        return
    assert inserted.get("status") == TO_EXPORT and inserted.get("deanery") == DEANERY, (
        f"{record.describe()} is not this partition's to export but was changed to status {document.get('status')!r}"
    )
    allowed_to_change = {"status", "generationError", "exportedFileName", "exportedAt"}
    changed = sorted(
        key
        for key in inserted
        if key not in allowed_to_change
        and (key not in document or not _same_bytes({key: document[key]}, {key: inserted[key]}))
    )
    assert not changed, f"{record.describe()}: fields {changed} were changed by the export"
    status = document.get("status")
    if status == EXPORTED:
        name = document.get("exportedFileName")
        assert name in files, f"{record.describe()} is EXPORTED into {name!r}, which is not in the export directory"
        reference = inserted.get("placementId")
        assert isinstance(reference, int) and not isinstance(reference, bool) and reference > 0, (
            f"{record.describe()} was exported without a numeric placementId"
        )
        lines = [row for row in _rows(files[name]) if len(row) > 1 and row[1] == str(reference)]
        assert len(lines) == 1, f"{record.describe()} is on {len(lines)} lines of {name}"
    elif status == INVALID_DATA:
        error = document.get("generationError")
        assert isinstance(error, str) and error, f"{record.describe()} is INVALID_DATA without a generationError"
        named = record.hostile_fields or set(EXPORT_MANDATORY_FIELDS)
        assert any(_names_field(error, path) for path in named), (
            f"{record.describe()} is INVALID_DATA with an error naming none of its hostile fields: {error!r}"
        )
    else:
        raise AssertionError(f"{record.describe()} ended {status!r}: neither EXPORTED, INVALID_DATA nor untouched")


def _assert_nothing_silently_skipped(
    record: GeneratedRecord, document: dict[str, Any], records: list[GeneratedRecord]
) -> None:
    inserted = record.document
    if inserted.get("status") != TO_EXPORT or inserted.get("deanery") != DEANERY:
        return
    anchor = inserted.get("startDate", MISSING)
    # A shared placement id may hold the record back (excluded and reported, or the deanery's run refused).
    shared = _shares_placement_id(record, records)
    untouched = _same_bytes(document, inserted)
    if isinstance(anchor, dt.datetime):
        if not WINDOW.is_eligible(anchor, RUN_DATE) or shared:
            return
        assert not untouched, f"{record.describe()} is eligible today but was left TO_EXPORT without a word"
        if record.hostile_fields <= record.exportable_fields:
            assert document.get("status") == EXPORTED, (
                f"{record.describe()} is valid and eligible but ended {document.get('status')!r}: "
                f"{document.get('generationError')!r}"
            )
    elif not (isinstance(anchor, str) and parse_date(anchor) is not None) and not shared:
        # Never selectable by date: only being found on a run of its deanery keeps it from waiting forever.
        assert document.get("status") == INVALID_DATA and "startDate" in str(document.get("generationError")), (
            f"{record.describe()} has a startDate that is not a date but ended {document.get('status')!r}"
        )


def _assert_files_are_clean_csv(
    files: dict[str, bytes], records: list[GeneratedRecord], stored: dict[Any, dict[str, Any]]
) -> None:
    by_id = {record.document["_id"]: record for record in records}
    for name, content in files.items():
        assert name.startswith(f"DE_{DEANERY}_APP_{RUN_DATE:%Y%m%d}_"), f"{name} is not this partition's file"
        marked = [by_id[key] for key, document in stored.items() if document.get("exportedFileName") == name]
        text = content.decode("utf-8")
        rows = _rows(content)
        assert len(rows) == len(marked), f"{name} has {len(rows)} CSV rows for {len(marked)} records marked with it"
        assert len(text.splitlines()) == len(rows), (
            f"{name}: a line splitter sees {len(text.splitlines())} lines for {len(rows)} records"
        )
        controls = sorted({f"U+{ord(c):04X}" for c in text.replace("\n", "") if unicodedata.category(c) == "Cc"})
        assert not controls, f"{name} carries control characters {controls} inside its values"
        references = sorted(str(record.document["placementId"]) for record in marked)
        assert sorted(row[1] for row in rows) == references, f"{name} does not hold the placement ids marked with it"
        for row in rows:
            record = next(record for record in marked if str(record.document["placementId"]) == row[1])
            assert len(row) == EXPORT_FILE_FIELDS and row[0] == "APP", (
                f"{name}: the line of {record.describe()} has {len(row)} fields"
            )
            blank = [column for index, column in MANDATORY_COLUMNS.items() if not _visible(row[index])]
            assert not blank, f"{name}: the line of {record.describe()} has blank mandatory columns {blank}"
            for index, column in enumerate(APP_COLUMNS, start=1):
                value = _get(record.document, column.source)
                if column.kind == "text" and isinstance(value, (dict, list)):
                    assert str(value) not in row[index], (
                        f"{name}: the line of {record.describe()} writes {column.name} as a Python repr"
                    )


def _assert_no_number_burned_and_no_partial_file(harness: ExportHarness, files: dict[str, bytes]) -> None:
    counter = harness.counter(DEANERY)
    assert counter.seq == len(files), f"counter {counter.counter_id} at {counter.seq!r} for {len(files)} file(s)"
    leftovers = sorted(path.name for path in harness.export_dir.glob("*") if path.name not in files)
    assert not leftovers, f"the export directory holds {leftovers} besides the files"


def _assert_nothing_personal_reached_logs_or_metadata(outcome: RunOutcome, records: list[GeneratedRecord]) -> None:
    secrets = personal_values(record.pristine for record in records)
    for where, text in outcome.logs.items():
        leaked = sorted(secret for secret in secrets if _appears(secret, text))
        assert not leaked, f"personal values in the {where}: {len(leaked)} found"


# -- helpers ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(mongo_uri: str) -> Iterator[tuple[Database, Path]]:
    """A database and a directory of this example's own (pytest's fixtures are per test, not per example)."""
    name = f"esr_test_{uuid.uuid4().hex[:12]}"
    client: MongoClient = MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        with tempfile.TemporaryDirectory(prefix="esr-hostile-") as scratch:
            (Path(scratch) / "dagster_home").mkdir()
            yield client[name], Path(scratch)
    finally:
        client.drop_database(name)
        client.close()


class _Collecting(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a malformed third-party record must not hide the export's own
            self.messages.append(str(record.msg))


@contextlib.contextmanager
def collected_python_logs() -> Iterator[list[str]]:
    """Every Python log message of the run, at every level (what a log shipper would keep)."""
    root = logging.getLogger()
    handler = _Collecting()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def _same_bytes(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal as BSON: types and field order count (1, 1.0 and True are different values)."""
    return bson.encode(a) == bson.encode(b)


def _names_field(error: str, path: str) -> bool:
    """The error names the field, by its dotted path or its own name (or a field inside it)."""
    leaf = path.rsplit(".", 1)[-1]
    return path in error or (not leaf.isdigit() and leaf in error)
