"""ESR_SEQUENCE_SCOPE: one shared sequence per file type (the default, what ESR has always received) or one per
deanery; a change of scope refused until the cut-over, and the cut-over from the legacy exporter's numbers."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import EnvVar

from esr_export_dagster.definitions import default_resources
from esr_export_dagster.domain.records import TO_EXPORT
from esr_export_dagster.domain.sequence import DEANERY_SCOPE, SHARED_SCOPE
from esr_export_dagster.local.cli import main as esr_export_local
from esr_export_dagster.resources import ExportPolicyResource
from esr_export_dagster.storage.collections import COUNTER

from .conftest import failure_message
from .invariants import files_on_disk

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 27)
NEXT_DATE = RUN_DATE + dt.timedelta(days=1)


def use_scope(harness, scope: str) -> None:
    harness.policy = ExportPolicyResource(sequence_scope=scope)


@pytest.fixture
def cut_over(harness, monkeypatch, capsys):
    """`esr-export-local cut-over ARGS` against the harness's database, in ``scope``; (exit code, out, err)."""

    def run(*arguments: str, scope: str = SHARED_SCOPE) -> tuple[int, str, str]:
        monkeypatch.setenv("ESR_MONGODB_URI", harness.uri)
        monkeypatch.setenv("ESR_MONGODB_DATABASE", harness.database.name)
        monkeypatch.setenv("ESR_SEQUENCE_SCOPE", scope)
        code = esr_export_local(["cut-over", *arguments])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_deaneries_number_their_files_in_one_sequence_in_the_order_they_write_them(harness):
    harness.add_due("EMD", RUN_DATE, count=2)
    harness.add_not_yet_due("WES", RUN_DATE)
    harness.add_due("WMD", RUN_DATE)

    emd, wes, wmd = (harness.run_ok(RUN_DATE, deanery) for deanery in ("EMD", "WES", "WMD"))
    harness.add_due("EMD", NEXT_DATE)
    emd_next = harness.run_ok(NEXT_DATE, "EMD")

    assert emd["files_written_by_this_run"] == ["DE_EMD_APP_20210727_00000001.DAT"]
    assert wes["files_written_by_this_run"] == [], "no number for a deanery with nothing to send"
    assert wmd["files_written_by_this_run"] == ["DE_WMD_APP_20210727_00000002.DAT"]
    assert emd_next["files_written_by_this_run"] == ["DE_EMD_APP_20210728_00000003.DAT"]
    assert harness.database[COUNTER].find_one({"_id": "APP"})["seq"] == 3
    harness.assert_invariants()


def test_an_unknown_sequence_scope_fails_the_run_at_once_naming_the_variable(harness):
    harness.add_due("EOE", RUN_DATE)
    use_scope(harness, "per-deanery")

    result = harness.run(RUN_DATE, "EOE")

    assert not result.success
    assert "ESR_SEQUENCE_SCOPE is 'per-deanery': it must be shared or deanery" in failure_message(result)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert harness.records.count_documents({"status": TO_EXPORT}) == 1


def test_switching_an_instance_with_files_from_deanery_to_shared_is_refused_until_the_cut_over(harness, cut_over):
    use_scope(harness, DEANERY_SCOPE)
    harness.add_due("EOE", RUN_DATE)
    harness.run_ok(RUN_DATE, "EOE")
    use_scope(harness, SHARED_SCOPE)
    waiting = harness.add_due("LDN", RUN_DATE)

    refused = harness.run(RUN_DATE, "LDN")

    assert not refused.success
    message = failure_message(refused)
    assert (
        "ESR_SEQUENCE_SCOPE is shared, but this instance numbers APP files per deanery (counter(s) APP_EOE)" in message
    )
    assert "esr-export-local cut-over --app <last number ESR received>" in message
    assert harness.records.find_one({"_id": waiting[0]["_id"]})["status"] == TO_EXPORT
    assert harness.database[COUNTER].find_one({"_id": "APP"}) is None

    code, out, _ = cut_over("--app", "3766")
    summary = harness.run_ok(RUN_DATE, "LDN")

    assert code == 0
    assert "counter APP: absent -> 3766 (next APP file: 3767)" in out
    assert summary["files_written_by_this_run"] == ["DE_LDN_APP_20210727_00003767.DAT"]


def test_switching_a_shared_instance_to_deanery_scope_is_refused_naming_the_shared_counter(harness):
    harness.add_due("EOE", RUN_DATE)
    harness.run_ok(RUN_DATE, "EOE")
    use_scope(harness, DEANERY_SCOPE)
    harness.add_due("EOE", NEXT_DATE)

    refused = harness.run(NEXT_DATE, "EOE")

    assert not refused.success
    assert (
        "ESR_SEQUENCE_SCOPE is deanery, but this instance numbers APP files in one shared sequence (counter APP, at 1"
        in (failure_message(refused))
    )
    assert list(files_on_disk(harness.export_dir)) == ["DE_EOE_APP_20210727_00000001.DAT"]


def test_the_cut_over_continues_the_legacy_sequences_of_both_file_types(harness, cut_over):
    harness.add_due("SEV", RUN_DATE)

    code, out, err = cut_over("--app", "3766", "--dnc", "120")
    summary = harness.run_ok(RUN_DATE, "SEV")

    assert code == 0, err
    assert "Cut-over in shared scope" in out
    assert "counter APP: absent -> 3766 (next APP file: 3767)" in out
    assert "counter DNC: absent -> 120 (next DNC file: 121)" in out
    assert summary["files_written_by_this_run"] == ["DE_SEV_APP_20210727_00003767.DAT"]
    assert harness.database[COUNTER].find_one({"_id": "DNC"})["seq"] == 120


def test_the_cut_over_never_moves_a_counter_backwards_and_then_changes_nothing(harness, cut_over):
    harness.database[COUNTER].insert_many([{"_id": "APP", "seq": 3766}, {"_id": "DNC", "seq": 120}])

    code, out, err = cut_over("--dnc", "130", "--app", "3000")

    assert code == 1
    assert "counter APP is at 3766; moving it back to 3000 would issue numbers ESR already has" in err
    assert "Nothing was changed" in err
    assert harness.database[COUNTER].find_one({"_id": "APP"})["seq"] == 3766
    assert harness.database[COUNTER].find_one({"_id": "DNC"})["seq"] == 120, "checked all before moving any"
    assert cut_over("--app", "3766")[0] == 0, "the same number again is not backwards"


def test_the_cut_over_is_refused_while_a_batch_is_open(harness, cut_over):
    open_batch = {"id": "b1", "runId": "r1", "state": "NUMBERED", "fileCount": 1, "firstSeq": 6}
    harness.database[COUNTER].insert_one({"_id": "APP", "seq": 6, "deaneries": {"EOE": {"openBatch": open_batch}}})

    code, _, err = cut_over("--app", "3766")

    assert code == 1
    assert "counter(s) APP (EOE) hold an open batch" in err
    assert harness.database[COUNTER].find_one({"_id": "APP"})["seq"] == 6


def test_the_cut_over_in_deanery_scope_takes_each_deanerys_last_number(harness, cut_over):
    use_scope(harness, DEANERY_SCOPE)
    harness.add_due("EMD", RUN_DATE)
    harness.add_due("WMD", RUN_DATE)

    code, out, err = cut_over("--app", "EMD=3754", "--app", "WMD=3757", scope=DEANERY_SCOPE)
    emd, wmd = harness.run_ok(RUN_DATE, "EMD"), harness.run_ok(RUN_DATE, "WMD")

    assert code == 0, err
    assert "counter APP_EMD: absent -> 3754" in out and "counter APP_WMD: absent -> 3757" in out
    assert emd["files_written_by_this_run"] == ["DE_EMD_APP_20210727_00003755.DAT"]
    assert wmd["files_written_by_this_run"] == ["DE_WMD_APP_20210727_00003758.DAT"]


@pytest.mark.parametrize(
    ("arguments", "scope", "error"),
    [
        (["--app", "EMD=3754"], SHARED_SCOPE, "--app: shared scope takes one last number for all deaneries"),
        (["--app", "3754"], DEANERY_SCOPE, "--app: deanery scope takes DEANERY=N per deanery"),
        (["--app", "XYZ=1"], DEANERY_SCOPE, "Unknown deanery code 'XYZ'"),
        (["--dnc", "12a"], SHARED_SCOPE, "--dnc: '12a' is not a whole number"),
        ([], SHARED_SCOPE, "Give the last number ESR received: --app and/or --dnc"),
    ],
)
def test_the_cut_over_refuses_numbers_it_cannot_read(harness, cut_over, arguments, scope, error):
    code, _, err = cut_over(*arguments, scope=scope)

    assert code == 1
    assert error in err
    assert harness.database[COUNTER].count_documents({}) == 0


def test_the_code_location_reads_the_scope_from_esr_sequence_scope_and_defaults_to_shared(monkeypatch):
    monkeypatch.delenv("ESR_SEQUENCE_SCOPE", raising=False)
    assert default_resources()["export_policy"].sequence_scope == SHARED_SCOPE

    monkeypatch.setenv("ESR_SEQUENCE_SCOPE", DEANERY_SCOPE)
    configured = default_resources()["export_policy"].sequence_scope
    assert isinstance(configured, EnvVar) and configured.get_value() == DEANERY_SCOPE
