"""ESR's confirmations, the round trip for both streams over real locations (a local folder, moto's S3
server, an OpenSSH sshd): export, delivery, ESR's stand-in answers into the inbound location, the
confirmation sensor and runs, each record's outcome, and the alerts for rejections and for a file ESR
leaves unanswered (the clock under the test's control). Then the bad inputs: malformed lines, unmatched
references, an unreadable file, an empty file, the same file read twice."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import time_machine
from dagster import AssetKey, RunRequest
from dagster_aws.s3 import S3Resource

from esr_export_dagster.alerts import AlertChannelsResource, EsrSlackResource
from esr_export_dagster.confirmation_sensor import esr_confirmation_alert_sensor, esr_confirmation_sensor
from esr_export_dagster.definitions import defs
from esr_export_dagster.delivery_resource import DeliveryResource
from esr_export_dagster.domain.confirmation_file import (
    LAYOUT_ANSWERING,
    LOADED,
    LOADED_WITH_WARNINGS,
    REJECTED,
    confirmation_file_name,
)
from esr_export_dagster.domain.delivery_url import DeliveryUrlError
from esr_export_dagster.domain.streams import APP_STREAM, STREAMS
from esr_export_dagster.local import esr_standin
from esr_export_dagster.local.cli import answer_until
from esr_export_dagster.partitions import export_partitions
from esr_export_dagster.storage.collections import ESR_CONFIRMATION, EXPORT_FILE

from .alert_servers import RecordingServer
from .conftest import QUIET_LOGS, each_stream, failure_message
from .delivery_servers import FAKE_AWS_ACCESS_KEY_ID, FAKE_AWS_SECRET_ACCESS_KEY, S3_REGION

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
DROP_PREFIX = "outbound/tis"
INBOUND_PREFIX = "inbound/tis"


@dataclass
class EsrSide:
    """ESR's drop and inbound location on one real server, and ESR's stand-in answering from one to the other."""

    kind: str
    tmp_path: Path
    moto_s3: Any = None
    sshd: Any = None
    bucket: str = ""
    drop: Path | None = None
    inbound: Path | None = None

    def resource(self) -> DeliveryResource:
        if self.kind == "local":
            return DeliveryResource(local_folder=str(self.drop), inbound_local_folder=str(self.inbound))
        if self.kind == "s3":
            return DeliveryResource(
                url=f"s3://{self.bucket}/{DROP_PREFIX}",
                inbound_url=f"s3://{self.bucket}/{INBOUND_PREFIX}",
                s3=S3Resource(
                    endpoint_url=self.moto_s3.endpoint_url,
                    region_name=S3_REGION,
                    aws_access_key_id=FAKE_AWS_ACCESS_KEY_ID,
                    aws_secret_access_key=FAKE_AWS_SECRET_ACCESS_KEY,
                    max_attempts=1,
                ),
            )
        return DeliveryResource(
            url=self.sshd.url(self.drop),
            inbound_url=self.sshd.url(self.inbound),
            ssh_key_file=str(self.sshd.user_key_file),
            known_hosts_file=str(self.sshd.known_hosts_file),
            sftp_timeout_seconds=5,
        )

    def delivered(self) -> dict[str, bytes]:
        if self.kind == "s3":
            client = self.moto_s3.client()
            listing = client.list_objects_v2(Bucket=self.bucket, Prefix=f"{DROP_PREFIX}/").get("Contents", [])
            return {
                o["Key"].rsplit("/", 1)[-1]: client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
                for o in listing
            }
        return {p.name: p.read_bytes() for p in sorted(self.drop.glob("DE_*.DAT"))}

    def put_inbound(self, name: str, content: bytes) -> None:
        if self.kind == "s3":
            self.moto_s3.client().put_object(Bucket=self.bucket, Key=f"{INBOUND_PREFIX}/{name}", Body=content)
        else:
            self.inbound.mkdir(parents=True, exist_ok=True)
            (self.inbound / name).write_bytes(content)

    def inbound_names(self, folder: str = "") -> list[str]:
        if self.kind == "s3":
            prefix = f"{INBOUND_PREFIX}/{folder + '/' if folder else ''}"
            listing = self.moto_s3.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            return sorted(o["Key"][len(prefix) :] for o in listing.get("Contents", []))
        where = self.inbound / folder if folder else self.inbound
        return sorted(p.name for p in where.glob("DE_*") if p.is_file()) if where.is_dir() else []

    def answer(self, deaneries: tuple[str, ...], sequence: int = 70_001) -> list[str]:
        """ESR's stand-in answers the delivered files of ``deaneries``; the others are left unanswered."""
        written = []
        for name, content in sorted(self.delivered().items()):
            if name.split("_")[1] in deaneries:
                confirmation, body = esr_standin.answer(name, content, sequence)
                self.put_inbound(confirmation, body)
                written.append(confirmation)
                sequence += 1
        return written


@pytest.fixture(params=["local", "s3", "sftp"])
def esr_side(request: pytest.FixtureRequest, tmp_path: Path, harness) -> Iterator[EsrSide]:
    side = EsrSide(request.param, tmp_path)
    if side.kind == "local":
        side.drop, side.inbound = tmp_path / "esr-drop", tmp_path / "esr-inbound"
    elif side.kind == "s3":
        side.moto_s3 = request.getfixturevalue("moto_s3")
        side.bucket = side.moto_s3.new_bucket()
    else:
        side.sshd = request.getfixturevalue("sshd_server")
        side.drop, side.inbound = side.sshd.new_folder(), side.sshd.new_folder()
    harness.delivery = side.resource()
    yield side


@pytest.fixture
def local_side(tmp_path: Path, harness) -> EsrSide:
    side = EsrSide("local", tmp_path, drop=tmp_path / "esr-drop", inbound=tmp_path / "esr-inbound")
    harness.delivery = side.resource()
    return side


def run_requested(harness, requests: list[RunRequest]) -> list[Any]:
    results = []
    for request in requests:
        job = harness.definitions().resolve_job_def(request.job_name)
        result = job.execute_in_process(
            run_config={**request.run_config, **QUIET_LOGS},
            instance=harness.instance,
            tags=request.tags,
            raise_on_error=False,
        )
        assert result.success, failure_message(result)
        results.append(result)
    return results


def read_inbound(harness, cursor: str | None = None) -> tuple[list[Any], str | None]:
    """One tick of the confirmation sensor and the runs it requests; returns their results and the cursor."""
    tick = harness.tick_sensor(esr_confirmation_sensor, cursor)
    return run_requested(harness, list(tick.run_requests or [])), tick.cursor


def materialization(result) -> dict[str, Any]:
    (event,) = result.get_asset_materialization_events()
    return {key: value.value for key, value in event.materialization.metadata.items()}


def outcomes(harness) -> dict[int, dict[str, Any]]:
    ref = harness.stream.reference_field
    return {r[ref]: r.get("esrOutcome") for r in harness.records.find({}, {ref: 1, "esrOutcome": 1})}


# -- the round trip ---------------------------------------------------------------------------------


@each_stream
def test_the_round_trip_records_each_outcome_and_alerts_rejections_and_silence(harness, esr_side):
    eoe = harness.add_due("EOE", RUN_DATE, count=6)
    harness.add_due("LDN", RUN_DATE, count=2)
    references = [harness.reference(record) for record in eoe]
    rejected = [r for r in references if esr_standin.rejects(r)]
    warned = [r for r in references if not esr_standin.rejects(r) and r % esr_standin.WARNED_EVERY == 0]
    assert rejected and warned  # the harness's ids give one of each
    for deanery in ("EOE", "LDN"):
        assert harness.run(RUN_DATE, deanery).success
    eoe_file = harness.file_name("EOE", RUN_DATE, 1)
    ldn_file = harness.file_name("LDN", RUN_DATE, 2)  # one sequence shared by the deaneries
    assert sorted(esr_side.delivered()) == [eoe_file, ldn_file]

    (confirmation,) = esr_side.answer(("EOE",))  # ESR answers EOE's file and never LDN's
    results, cursor = read_inbound(harness)

    (result,) = results
    metadata = materialization(result)
    assert metadata["confirmation_file"] == confirmation
    assert metadata["export_file_answered"] == eoe_file
    assert (metadata["deanery"], metadata["loaded"], metadata["warnings"], metadata["failed"]) == (
        "EOE",
        len(references) - len(rejected) - len(warned),
        len(warned),
        len(rejected),
    )
    assert metadata["unmatched"] == metadata["quarantined"] == 0
    found = outcomes(harness)
    for reference in references:
        outcome = found[reference]
        expected = REJECTED if reference in rejected else LOADED_WITH_WARNINGS if reference in warned else LOADED
        assert outcome["status"] == expected
        assert outcome["confirmationFile"] == confirmation and outcome["exportFile"] == eoe_file
        if harness.stream is APP_STREAM and expected != REJECTED:
            assert outcome["applicantNumber"] == 40_000_000 + reference
            assert outcome["assignmentId"] == 50_000_000 + reference
    assert found[rejected[0]]["messageText"] == esr_standin.REJECTION_TEXT
    ledger = harness.database[EXPORT_FILE].find_one({"_id": eoe_file})
    (recorded,) = ledger["esrConfirmations"].values()
    assert (recorded["file"], recorded["loaded"], recorded["failed"]) == (
        confirmation,
        metadata["loaded"],
        len(rejected),
    )
    assert "esrConfirmations" not in harness.database[EXPORT_FILE].find_one({"_id": ldn_file})

    # Listed again on every tick, read once.
    again, cursor = read_inbound(harness, cursor)
    assert again == []
    assert harness.tick_sensor(esr_confirmation_sensor).run_requests == []  # even with the cursor lost

    with RecordingServer(slack=True) as slack:
        harness.alert_channels = AlertChannelsResource(
            slack=EsrSlackResource(token="xoxb-test", api_url=slack.url), slack_channel="#esr"
        )
        alert_cursor = harness.tick_sensor(esr_confirmation_alert_sensor).cursor
        (rejection_alert,) = slack.received
        noun = "placement" if harness.stream is APP_STREAM else "notification"
        for reference in rejected:
            assert f"{noun} {reference} in {eoe_file} (ERROR)" in rejection_alert
        assert "EOE" in rejection_alert and esr_standin.REJECTION_TEXT not in rejection_alert
        assert ldn_file not in rejection_alert  # not overdue yet

        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=31)
        with time_machine.travel(later, tick=False):
            overdue_tick = harness.tick_sensor(esr_confirmation_alert_sensor, alert_cursor)
            alert_cursor = overdue_tick.cursor
            checks = {e.check_name: e.passed for e in harness.run(RUN_DATE, "LDN").get_asset_check_evaluations()}
            eoe_checks = {e.check_name: e.passed for e in harness.run(RUN_DATE, "EOE").get_asset_check_evaluations()}
        assert len(slack.received) == 2
        silence = slack.received[1]
        assert ldn_file in silence and eoe_file not in silence and "30 hours" in silence
        assert checks["esr_confirmed_every_file"] is False and eoe_checks["esr_confirmed_every_file"] is True

        with time_machine.travel(later + dt.timedelta(hours=1), tick=False):
            alert_cursor = harness.tick_sensor(esr_confirmation_alert_sensor, alert_cursor).cursor
        assert len(slack.received) == 2  # once, and the rejections only once
        with time_machine.travel(later + dt.timedelta(days=1), tick=False):
            harness.tick_sensor(esr_confirmation_alert_sensor, alert_cursor)
        assert len(slack.received) == 3 and ldn_file in slack.received[2]  # then daily
        # The partition's check follows between runs: failed as the file passed the deadline ...
        (failed,) = overdue_tick.asset_events
        assert (failed.check_name, failed.passed, failed.partition) == (
            "esr_confirmed_every_file",
            False,
            f"{RUN_DATE}|LDN",
        )
        assert failed.asset_key == harness.file_asset_key
        # ... and passed once ESR answers after all.
        esr_side.answer(("LDN",), sequence=70_100)
        read_inbound(harness, cursor)
        with time_machine.travel(later + dt.timedelta(days=1, hours=1), tick=False):
            answered_tick = harness.tick_sensor(esr_confirmation_alert_sensor, alert_cursor)
        assert len(slack.received) == 3
        (passed,) = [e for e in answered_tick.asset_events if e.partition == f"{RUN_DATE}|LDN"]
        assert passed.passed is True


# -- bad input --------------------------------------------------------------------------------------


def confirmation_for(harness, deanery: str, sequence: int = 70_500) -> str:
    return confirmation_file_name(deanery, LAYOUT_ANSWERING[harness.stream.file_type].file_type, RUN_DATE, sequence)


@each_stream
def test_malformed_lines_are_quarantined_unmatched_references_reported_and_the_rest_applied(harness, local_side):
    first, second = harness.add_due("EOE", RUN_DATE, count=2)
    (other_deanery,) = harness.add_due("LDN", RUN_DATE)
    for deanery in ("EOE", "LDN"):
        assert harness.run(RUN_DATE, deanery).success
    ((eoe_name, eoe_body),) = [
        esr_standin.answer(name, content, 70_001) for name, content in local_side.delivered().items() if "_EOE_" in name
    ]
    good = eoe_body.decode().splitlines()
    record_type = good[0].split(",")[0]
    width = good[0].count(",")
    lines = [
        good[0],
        f"{record_type},{'x,' * (width - 2)}x",  # too few fields
        good[1].replace("SUCCESS", "MAYBE").replace("FAIL", "MAYBE"),
        good[1].replace(str(harness.reference(second)), f"R{harness.reference(second)}"),
        good[0].replace(str(harness.reference(first)), str(harness.reference(other_deanery))),
        good[0].replace(str(harness.reference(first)), "999999999"),
    ]
    local_side.put_inbound(eoe_name, ("\n".join(lines) + "\n").encode())

    (result,), _ = read_inbound(harness)

    metadata = materialization(result)
    assert metadata["export_file_answered"] == harness.file_name("EOE", RUN_DATE, 1)
    assert (metadata["loaded"] + metadata["warnings"] + metadata["failed"], metadata["quarantined"]) == (1, 3)
    assert [q["line"] for q in metadata["quarantined_lines"]] == [2, 3, 4]
    reasons = " ".join(q["reason"] for q in metadata["quarantined_lines"])
    assert "fields, expected" in reasons and "loadStatusCode" in reasons and "not a whole number" in reasons
    assert [(u["line"], u["reference"]) for u in metadata["unmatched_lines"]] == [
        (5, harness.reference(other_deanery)),
        (6, 999999999),
    ]
    assert metadata["unmatched_lines"][0]["reason"] == "the record belongs to another deanery"
    found = outcomes(harness)
    assert found[harness.reference(first)] is not None
    assert found[harness.reference(second)] is None and found[harness.reference(other_deanery)] is None
    stored = harness.database[ESR_CONFIRMATION].find_one({"name": eoe_name})
    assert stored["counts"]["quarantined"] == 3 and stored["counts"]["unmatched"] == 2


def test_reading_the_same_confirmation_twice_changes_nothing(harness, local_side):
    harness.add_due("EOE", RUN_DATE, count=4)
    assert harness.run(RUN_DATE, "EOE").success
    (name,) = local_side.answer(("EOE",))
    content = (local_side.inbound / name).read_bytes()
    read_inbound(harness)

    def snapshot() -> list[Any]:
        return [
            list(harness.records.find({}, {"esrOutcome": 1}).sort("_id", 1)),
            list(harness.database[EXPORT_FILE].find({}).sort("_id", 1)),
            list(harness.database[ESR_CONFIRMATION].find({}).sort("_id", 1)),
        ]

    before = snapshot()
    request = RunRequest(
        job_name="read_app_esr_confirmation",
        run_config={
            "ops": {
                "app_esr_confirmation": {"config": {"file_name": name, "sha256": hashlib.sha256(content).hexdigest()}}
            }
        },
    )
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=5), tick=False):
        run_requested(harness, [request])

    assert snapshot() == before


@each_stream
def test_an_unreadable_file_is_moved_aside_and_alerted_and_the_next_file_is_read(harness, esr_side):
    harness.add_due("EOE", RUN_DATE, count=2)
    assert harness.run(RUN_DATE, "EOE").success
    bad = confirmation_for(harness, "EOE", 70_000)
    esr_side.put_inbound(bad, b"\x00\x01\xff binary")
    (good,) = esr_side.answer(("EOE",))

    (result,), _ = read_inbound(harness)

    assert materialization(result)["confirmation_file"] == good
    assert esr_side.inbound_names() == [good]
    assert esr_side.inbound_names("unreadable") == [bad]
    (stored,) = harness.database[ESR_CONFIRMATION].find({"state": "UNREADABLE"})
    assert stored["name"] == bad and "NUL bytes" in stored["reason"]
    with RecordingServer(slack=True) as slack:
        harness.alert_channels = AlertChannelsResource(
            slack=EsrSlackResource(token="xoxb-test", api_url=slack.url), slack_channel="#esr"
        )
        cursor = harness.tick_sensor(esr_confirmation_alert_sensor).cursor
        harness.tick_sensor(esr_confirmation_alert_sensor, cursor)
    unreadable_alerts = [text for text in slack.received if bad in text]
    assert len(unreadable_alerts) == 1 and "cannot be read" in unreadable_alerts[0]


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """The folder mounted read-only over itself (as root, whom permissions do not stop), else made unwritable."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_an_unreadable_file_in_a_read_only_location_is_marked_and_left(harness, local_side):
    local_side.inbound.mkdir()
    bad = confirmation_for(harness, "EOE")
    local_side.put_inbound(bad, b"\xff\xfe\xfd")
    with read_only(local_side.inbound):
        tick = harness.tick_sensor(esr_confirmation_sensor)
        second = harness.tick_sensor(esr_confirmation_sensor)

    assert tick.run_requests == [] and second.run_requests == []
    assert local_side.inbound_names() == [bad]
    (stored,) = harness.database[ESR_CONFIRMATION].find({})
    assert stored["state"] == "UNREADABLE" and stored["movedTo"] is None and "not UTF-8" in stored["reason"]


def test_an_empty_confirmation_is_recorded_and_answers_no_file(harness, local_side):
    name = confirmation_for(harness, "EOE")
    local_side.put_inbound(name, b"")

    (result,), _ = read_inbound(harness)

    metadata = materialization(result)
    assert metadata["export_file_answered"] == "none"
    assert (metadata["loaded"], metadata["failed"], metadata["unmatched"], metadata["quarantined"]) == (0, 0, 0, 0)
    (stored,) = harness.database[ESR_CONFIRMATION].find({})
    assert stored["name"] == name and stored["state"] == "APPLIED" and stored["exportFile"] is None


def test_make_devs_esr_stand_in_answers_each_delivered_file_once(harness, local_side):
    harness.add_due("EOE", RUN_DATE, count=3)
    assert harness.run(RUN_DATE, "EOE").success
    stop = threading.Event()
    answering = threading.Thread(target=answer_until, args=(stop, local_side.drop, local_side.inbound, 0.05))
    answering.start()
    try:
        deadline = time.monotonic() + 30
        while not local_side.inbound_names() and time.monotonic() < deadline:
            time.sleep(0.05)
        (first,) = local_side.inbound_names()
        harness.add_due("EOE", RUN_DATE + dt.timedelta(days=1), count=2)
        assert harness.run(RUN_DATE + dt.timedelta(days=1), "EOE").success
        while len(local_side.inbound_names()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a few more rounds: nothing is answered twice
    finally:
        stop.set()
        answering.join(10)

    names = local_side.inbound_names()
    assert len(names) == 2 and first in names
    results, _ = read_inbound(harness)
    assert sorted(materialization(r)["export_file_answered"] for r in results) == [
        harness.file_name("EOE", RUN_DATE, 1),
        harness.file_name("EOE", RUN_DATE + dt.timedelta(days=1), 2),
    ]


def test_a_deanerys_rejections_of_one_day_go_in_one_alert_each_once(harness, local_side):
    harness.add_due("EOE", RUN_DATE, count=6)
    assert harness.run(RUN_DATE, "EOE").success
    harness.add_due("EOE", RUN_DATE + dt.timedelta(days=1), count=16)
    assert harness.run(RUN_DATE + dt.timedelta(days=1), "EOE").success
    rejected = sorted(
        r[harness.stream.reference_field]
        for r in harness.records.find({})
        if esr_standin.rejects(r[harness.stream.reference_field])
    )
    assert len(rejected) == 2
    assert len(local_side.answer(("EOE",))) == 2
    read_inbound(harness)

    with RecordingServer(slack=True) as slack:
        harness.alert_channels = AlertChannelsResource(
            slack=EsrSlackResource(token="xoxb-test", api_url=slack.url), slack_channel="#esr"
        )
        cursor = harness.tick_sensor(esr_confirmation_alert_sensor).cursor
        harness.tick_sensor(esr_confirmation_alert_sensor, cursor)

    (alert,) = slack.received
    assert "ESR rejected 2 record(s) of EOE" in alert
    assert f"placement {rejected[0]} in {harness.file_name('EOE', RUN_DATE, 1)} (ERROR)" in alert
    assert f"placement {rejected[1]} in {harness.file_name('EOE', RUN_DATE + dt.timedelta(days=1), 2)}" in alert


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("ftp://esr.example/in", "scheme 'ftp'"),
        ("sftp://tis:secret@esr.example/in", "holds a password"),
        ("s3://Bad_Bucket/in", "S3 bucket name"),
    ],
)
def test_a_bad_inbound_url_is_refused_naming_the_setting_not_the_url(url, named):
    with pytest.raises(DeliveryUrlError) as refused:
        DeliveryResource(inbound_url=url).inbound()
    assert "ESR_INBOUND_URL" in str(refused.value) and named in str(refused.value)
    assert "ESR_DELIVERY_URL" not in str(refused.value) and "secret" not in str(refused.value)


@pytest.mark.parametrize("stream", STREAMS, ids=lambda stream: stream.name)
def test_a_confirmation_run_depends_on_no_partition_of_the_export_files(stream):
    """The file a confirmation answers is found from its references, at run time. Depending on every
    partition (Dagster's default) made each confirmation run list the whole (date, deanery) grid."""
    confirmation = defs.resolve_assets_def(AssetKey(stream.confirmation_asset_name))
    mapping = confirmation.get_partition_mapping(AssetKey(stream.file_asset_name))
    assert mapping is not None, "Dagster's default mapping: every partition of the export file asset"

    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(None, None, export_partitions)

    assert upstream.partitions_subset.is_empty, "the confirmation claims export file partitions: its runs list them"
    deps = {dep.asset_key for dep in confirmation.specs_by_key[confirmation.key].deps}
    assert AssetKey(stream.file_asset_name) in deps, "the lineage edge to the export file asset is gone"
