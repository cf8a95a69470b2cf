"""The selection as the selection asset's metadata is built from it: ids and scheduling fields, exactly."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from esr_export_dagster.selection_frame import partition_keys_of, selections_to_frame
from esr_export_dagster.storage.exporter import Selection
from esr_export_dagster.storage.ledger import CounterState
from esr_export_dagster.storage.selection import SelectedRecord

from .conftest import run_in_new_interpreter

RUN_DATE = dt.date(2021, 7, 31)


def _record(reference: int | None, post: str | None, invalid: tuple[str, ...] = ()) -> SelectedRecord:
    return SelectedRecord(ObjectId(), reference, post, dt.date(2021, 8, 5), RUN_DATE, invalid)


def _selections() -> list[Selection]:
    return [
        Selection(
            "EOE",
            CounterState("APP_EOE", True, 0, 4, None),
            (
                _record(4200017, "EOE/RGT00/001/FY1/001"),
                _record(None, "EOE/RGT00/001/FY1/001", ("placementId",)),
                _record(4200018, None, ("deaneryPostNumber", "applicant.dob")),
                SelectedRecord(ObjectId(), 4200020, "EOE/RGT00/001/FY1/001", None, RUN_DATE, ("startDate",)),
                SelectedRecord(
                    ObjectId(),
                    4200021,
                    "EOE/RGT00/001/FY1/002",
                    dt.date(2021, 8, 5),
                    RUN_DATE,
                    (),
                    "Duplicate placementId 4200021: also held by record 60117906459cf5418067a1e8 (EXPORTED).",
                ),
            ),
        ),
        Selection("KSS", CounterState("APP_KSS", False, 0, None, None), (_record(4200019, "KSS/RGT00/002/FY1/001"),)),
    ]


def test_each_row_is_one_selected_record_under_its_partition_key():
    selections = _selections()

    frame = selections_to_frame(selections)

    assert frame["record_id"].tolist() == [r.record_id for s in selections for r in s.records]
    assert partition_keys_of(frame).tolist() == ["2021-07-31|EOE"] * 5 + ["2021-07-31|KSS"]
    assert frame["invalid_fields"].tolist() == [
        "",
        "placementId",
        "deaneryPostNumber,applicant.dob",
        "startDate",
        "",
        "",
    ]
    assert frame["conflict"].tolist()[4].startswith("Duplicate placementId 4200021")


def test_the_frame_holds_ids_and_scheduling_fields_only():
    # The selection asset's preview and counts come from this frame: a new column has to be argued for
    # here, never slipped in.
    assert list(selections_to_frame(_selections()).columns) == [
        "record_id",
        "reference",
        "deanery",
        "deanery_post_number",
        "anchor_date",
        "run_date",
        "invalid_fields",
        # Why a valid record is set aside: its reference and the other records' ids, nothing else.
        "conflict",
    ]


def test_a_64_bit_reference_beside_a_missing_one_is_kept_exactly():
    big = 2**62 + 1  # not representable as a float
    selection = Selection(
        "EOE",
        CounterState("DNC_EOE", True, 0, 1, None),
        (_record(big, "EOE/RGT00/001/FY1/001"), _record(None, "EOE/RGT00/001/FY1/001", ("notificationId",))),
    )

    frame = selections_to_frame([selection])

    assert frame["reference"][0] == big
    assert frame["reference"].isna().tolist() == [False, True]


def test_loading_the_code_location_leaves_pandas_to_the_runs_that_select():
    """pandas costs about 0.7 s of CPU in every new interpreter that imports it, and the code server loads the
    location again at every reload; only the selection asset's runs build a frame."""
    probe = (
        "import sys, esr_export_dagster.definitions\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas')[:3])"
    )
    loaded = run_in_new_interpreter(probe)

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
