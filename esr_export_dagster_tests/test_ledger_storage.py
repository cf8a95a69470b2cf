"""How the ledger stores a batch's frozen plan in MongoDB, and that every stored form reads back the same."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from bson import ObjectId

from esr_export_dagster.domain.file_plan import PlannedFile
from esr_export_dagster.storage.collections import COUNTER, EXPORT_BATCH, EXPORT_FILE, ensure_indexes
from esr_export_dagster.storage.errors import CorruptExportStateError, ExportFileConflictError
from esr_export_dagster.storage.ledger import ExportLedger, pack_record_ids, unpack_record_ids

RUN_DATE = dt.date(2021, 7, 31)


def _open(ledger: ExportLedger, record_ids: tuple, deanery: str = "EOE") -> str:
    plan = [PlannedFile(run_date=RUN_DATE, record_ids=record_ids, largest_post_count=1)]
    batch = ledger.try_open_batch(deanery, ledger.read_counter(deanery), plan, run_id="run-1")
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


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ({"files": "all of them"}, "files is 'all of them' (text), not a list of planned files"),
        (
            {"files": [{"runDate": "2021-07-31", "recordIds": [], "largestPostCount": 1}]},
            "files[0] is not a planned file",
        ),
        ({"firstSeq": -3}, "firstSeq is -3"),
        ({"deanery": None}, "deanery is null"),
    ],
    ids=["files-not-a-list", "file-without-a-date", "negative-first-number", "no-deanery"],
)
def test_a_damaged_batch_plan_is_refused_naming_it_before_any_number_is_taken(database, damage, named):
    ledger = ExportLedger(database, "APP")
    batch_id = _open(ledger, (ObjectId(),))
    database[EXPORT_BATCH].update_one({"_id": batch_id}, {"$set": damage})

    with pytest.raises(CorruptExportStateError, match=re.escape(f"exportBatch {batch_id} cannot be trusted: {named}")):
        ledger.number_batch("EOE", batch_id)

    assert database[COUNTER].find_one({"_id": "APP"})["seq"] == 0


def test_a_number_already_in_the_ledger_under_another_name_is_refused_before_the_file_is_started(database):
    ledger = ExportLedger(database, "APP")
    ensure_indexes(database)
    database[EXPORT_FILE].insert_one(
        {"_id": "DE_EOE_APP_20210730_00000001.DAT", "fileType": "APP", "deanery": "EOE", "seq": 1, "state": "COMPLETE"}
    )
    batch = ledger.number_batch("EOE", _open(ledger, (ObjectId(),)))

    with pytest.raises(
        ExportFileConflictError, match="already holds DE_EOE_APP_20210730_00000001.DAT under APP number 1"
    ):
        ledger.record_file_started(batch, batch.files[0])

    assert database[EXPORT_FILE].count_documents({}) == 1


def test_a_shared_number_already_in_the_ledger_for_another_deanery_is_refused_before_the_file_is_written(database):
    ledger = ExportLedger(database, "APP")
    ensure_indexes(database)
    database[EXPORT_FILE].insert_one(
        {"_id": "DE_LDN_APP_20210730_00000001.DAT", "fileType": "APP", "deanery": "LDN", "seq": 1, "state": "COMPLETE"}
    )
    batch = ledger.number_batch("EOE", _open(ledger, (ObjectId(),)))

    with pytest.raises(
        ExportFileConflictError, match="already holds DE_LDN_APP_20210730_00000001.DAT under shared APP number 1"
    ):
        ledger.record_file_started(batch, batch.files[0])


def test_deaneries_keep_their_own_open_batch_on_the_shared_counter_and_take_consecutive_numbers(database):
    ledger = ExportLedger(database, "APP")
    eoe, ldn = _open(ledger, (ObjectId(),)), _open(ledger, (ObjectId(),), deanery="LDN")

    ldn_batch, eoe_batch = ledger.number_batch("LDN", ldn), ledger.number_batch("EOE", eoe)

    assert (ldn_batch.first_sequence, eoe_batch.first_sequence) == (1, 2)
    counter = database[COUNTER].find_one({"_id": "APP"})
    assert counter["seq"] == 2
    assert {d: slot["openBatch"]["firstSeq"] for d, slot in counter["deaneries"].items()} == {"EOE": 2, "LDN": 1}
    ledger.close_batch("LDN", ldn)
    assert ledger.read_counter("LDN").open_batch is None and ledger.read_counter("LDN").version == 1
    assert ledger.read_counter("EOE").open_batch["id"] == eoe
