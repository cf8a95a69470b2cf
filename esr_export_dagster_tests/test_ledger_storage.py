"""How the ledger stores a batch's frozen plan in MongoDB, and that every stored form reads back the same."""

from __future__ import annotations

import datetime as dt

import pytest
from bson import ObjectId

from esr_export_dagster.domain.file_plan import PlannedFile
from esr_export_dagster.storage.collections import EXPORT_BATCH
from esr_export_dagster.storage.ledger import ExportLedger, pack_record_ids, unpack_record_ids

RUN_DATE = dt.date(2021, 7, 31)


def _open(ledger: ExportLedger, record_ids: tuple) -> str:
    plan = [PlannedFile(run_date=RUN_DATE, record_ids=record_ids, largest_post_count=1)]
    batch = ledger.try_open_batch("EOE", ledger.read_counter("EOE"), plan, run_id="run-1")
    assert batch is not None
    return batch.batch_id


def test_a_plan_of_object_ids_reads_back_from_mongodb_in_line_order(database):
    ledger = ExportLedger(database, "APP")
    record_ids = tuple(ObjectId() for _ in range(500))[::-1]

    batch_id = _open(ledger, record_ids)

    stored = database[EXPORT_BATCH].find_one({"_id": batch_id})["files"][0]["recordIds"]
    assert isinstance(stored, bytes) and len(stored) == 12 * len(record_ids)
    assert ledger.load_batch(batch_id).planned[0].record_ids == record_ids
    assert ledger.number_batch("EOE", batch_id).files[0].record_ids == record_ids


def test_a_plan_of_other_ids_is_stored_as_a_plain_list(database):
    ledger = ExportLedger(database, "APP")
    record_ids = ("record-2", 7, ObjectId())

    batch_id = _open(ledger, record_ids)

    assert database[EXPORT_BATCH].find_one({"_id": batch_id})["files"][0]["recordIds"] == list(record_ids)
    assert ledger.load_batch(batch_id).planned[0].record_ids == record_ids


def test_a_batch_planned_before_ids_were_packed_still_loads(database):
    ledger = ExportLedger(database, "APP")
    record_ids = (ObjectId(), ObjectId())
    batch_id = _open(ledger, record_ids)
    legacy_files = [{"runDate": dt.datetime(2021, 7, 31), "recordIds": list(record_ids), "largestPostCount": 1}]
    database[EXPORT_BATCH].update_one({"_id": batch_id}, {"$set": {"files": legacy_files}})
    assert database[EXPORT_BATCH].find_one({"_id": batch_id})["files"][0]["recordIds"] == list(record_ids)

    assert ledger.number_batch("EOE", batch_id).files[0].record_ids == record_ids


def test_packed_ids_of_a_truncated_value_are_refused():
    packed = pack_record_ids((ObjectId(), ObjectId()))
    with pytest.raises(ValueError):
        unpack_record_ids(bytes(packed)[:-1])
