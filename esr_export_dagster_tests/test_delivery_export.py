"""Delivery to ESR's drop through the real export job, against real destinations (a local folder, moto's S3
server, an OpenSSH sshd): every written file delivered exactly once, byte for byte, through a destination
that is down, refuses the credentials, holds a name with other bytes, or a run SIGKILLed between the put and
the ledger's record of it; and the re-send job. Every scenario ends with the export's invariants and
delivery's."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import time_machine
from dagster_aws.s3 import S3Resource

from esr_export_dagster.delivery_ops import resend_export_file
from esr_export_dagster.delivery_resource import DeliveryResource
from esr_export_dagster.delivery_sensor import undelivered_files_sensor
from esr_export_dagster.domain.records import EXPORTED, TO_EXPORT
from esr_export_dagster.storage.collections import EXPORT_FILE

from . import kill_points
from .conftest import QUIET_LOGS, each_stream, failure_message
from .delivery_invariants import FolderDrop, S3Drop, assert_every_file_delivered_once
from .delivery_servers import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    S3_REGION,
    TcpGate,
)
from .invariants import assert_export_invariants
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)
NEXT_DATE = RUN_DATE + dt.timedelta(days=1)
PREFIX = "outbound/tis"


@dataclass
class Drop:
    """One test's ESR drop on a real server, reached through a gate that can refuse connections."""

    kind: str
    tmp_path: Path
    moto_s3: Any = None
    sshd: Any = None
    gate: TcpGate | None = None
    bucket: str = ""
    folder: Path | None = None
    key_file: str = ""
    known_hosts: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.gate.port}"

    def resource(self) -> DeliveryResource:
        if self.kind == "local":
            return DeliveryResource(local_folder=str(self.folder))
        if self.kind == "s3":
            return DeliveryResource(
                url=f"s3://{self.bucket}/{PREFIX}",
                s3=S3Resource(
                    endpoint_url=self.endpoint,
                    region_name=S3_REGION,
                    aws_access_key_id=FAKE_AWS_ACCESS_KEY_ID,
                    aws_secret_access_key=FAKE_AWS_SECRET_ACCESS_KEY,
                    max_attempts=1,
                ),
            )
        return DeliveryResource(
            url=self.sshd.url(self.folder, self.gate.port),
            ssh_key_file=self.key_file,
            known_hosts_file=self.known_hosts,
            sftp_timeout_seconds=5,
        )

    def env(self) -> dict[str, str]:
        """The same drop for a run in another process, configured as production configures it."""
        if self.kind == "local":
            return {"ESR_DELIVERY_DIR": str(self.folder)}
        if self.kind == "s3":
            return {
                "ESR_DELIVERY_URL": f"s3://{self.bucket}/{PREFIX}",
                "AWS_ENDPOINT_URL_S3": self.endpoint,
                "AWS_ACCESS_KEY_ID": FAKE_AWS_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": FAKE_AWS_SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": S3_REGION,
            }
        return {
            "ESR_DELIVERY_URL": self.sshd.url(self.folder, self.gate.port),
            "ESR_DELIVERY_SSH_KEY_FILE": self.key_file,
            "ESR_DELIVERY_KNOWN_HOSTS": self.known_hosts,
        }

    def view(self):
        if self.kind == "s3":
            return S3Drop(self.moto_s3.client(), self.bucket, PREFIX)
        return FolderDrop(self.folder)

    def where(self) -> str:
        """What an error about this drop must name."""
        return f"S3 bucket {self.bucket}" if self.kind == "s3" else f"SFTP server 127.0.0.1:{self.gate.port}"

    def plant(self, name: str, content: bytes) -> None:
        if self.kind == "s3":
            self.moto_s3.client().put_object(Bucket=self.bucket, Key=f"{PREFIX}/{name}", Body=content)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / name).write_bytes(content)

    def take_away(self, name: str) -> None:
        """ESR picks a file up (removes it from the drop), every version of it."""
        if self.kind == "s3":
            client = self.moto_s3.client()
            for version in client.list_object_versions(Bucket=self.bucket, Prefix=f"{PREFIX}/{name}").get(
                "Versions", []
            ):
                client.delete_object(Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"])
        else:
            (self.folder / name).unlink()

    def refuse_credentials(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if self.kind == "s3":
            from moto import settings

            # moto checks keys once IAM authentication is on; it knows none of the test's keys.
            monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        else:
            stranger = self.tmp_path / "stranger_key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
            self.key_file = str(stranger)

    def accept_credentials(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if self.kind == "s3":
            monkeypatch.undo()
        else:
            self.key_file = str(self.sshd.user_key_file)

    def secrets(self) -> list[str]:
        """Recognisable secret text that must appear nowhere the export shows anything."""
        if self.kind == "s3":
            return [FAKE_AWS_SECRET_ACCESS_KEY, FAKE_AWS_ACCESS_KEY_ID]
        pieces = []
        for key in (self.sshd.user_key_file, self.tmp_path / "stranger_key"):
            if Path(key).exists():
                body = "".join(Path(key).read_text().splitlines()[1:-1])
                pieces.extend(body[i : i + 24] for i in range(0, len(body) - 24, 24))
        return pieces


def make_drop(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Drop]:
    drop = Drop(kind, tmp_path)
    if kind == "local":
        drop.folder = tmp_path / "esr-drop"
        yield drop
        return
    if kind == "s3":
        drop.moto_s3 = request.getfixturevalue("moto_s3")
        drop.bucket = drop.moto_s3.new_bucket()
        drop.gate = TcpGate(int(drop.moto_s3.endpoint_url.rsplit(":", 1)[1]))
    else:
        drop.sshd = request.getfixturevalue("sshd_server")
        drop.folder = drop.sshd.new_folder()
        drop.gate = TcpGate(drop.sshd.port)
        drop.key_file = str(drop.sshd.user_key_file)
        # The server is reached through the gate's port: its host key is known under that port.
        kind_and_key = drop.sshd.known_hosts_file.read_text().split()[1:3]
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{drop.gate.port} {' '.join(kind_and_key)}\n")
        drop.known_hosts = str(known)
    try:
        yield drop
    finally:
        drop.gate.close()


@pytest.fixture(params=["local", "s3", "sftp"])
def drop(request: pytest.FixtureRequest, tmp_path: Path, harness) -> Iterator[Drop]:
    for made in make_drop(request.param, request, tmp_path):
        harness.delivery = made.resource()
        harness.delivery_env = made.env()
        yield made


@pytest.fixture(params=["s3", "sftp"])
def remote_drop(request: pytest.FixtureRequest, tmp_path: Path, harness) -> Iterator[Drop]:
    for made in make_drop(request.param, request, tmp_path):
        harness.delivery = made.resource()
        harness.delivery_env = made.env()
        yield made


def assert_all_invariants(harness, drop: Drop) -> None:
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)
    assert_every_file_delivered_once(harness.database, harness.export_dir, harness.stream, drop.view())


def retries(result) -> int:
    return len([e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"])


# -- the journey ------------------------------------------------------------------------------------


@each_stream
def test_every_written_file_is_delivered_once_and_recorded_in_the_ledger(harness, drop):
    harness.add_due("EOE", RUN_DATE, count=3)

    result = harness.run(RUN_DATE, "EOE")

    assert result.success, failure_message(result)
    name = harness.file_name("EOE", RUN_DATE, 1)
    summary = harness.summary_of(result)
    (delivered,) = summary["delivered_by_this_run"]
    assert (delivered["name"], delivered["already_there"]) == (name, False)
    assert delivered["destination"] == harness.delivery.target().describe()
    assert summary["undelivered_files"] == []
    materialization = next(
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == harness.file_asset_key
    )
    (row,) = [record.data for record in materialization.metadata["delivered_files"].records]
    assert (row["file"], row["sha256"], row["bytes"]) == (name, delivered["sha256"], delivered["size"])
    assert materialization.metadata["exported_records"].value == 3
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["every_file_delivered"] is True
    entry = harness.database[EXPORT_FILE].find_one({"_id": name})
    assert entry["delivered"]["location"] == harness.delivery.target().location(name)
    if drop.kind == "s3":
        assert entry["delivered"]["etag"]
    assert_all_invariants(harness, drop)


def test_materializing_again_delivers_nothing_twice(harness, drop):
    harness.add_due("LDN", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "LDN")

    again = harness.run_ok(RUN_DATE, "LDN")

    assert again["delivered_by_this_run"] == []
    assert_all_invariants(harness, drop)


# -- faults -----------------------------------------------------------------------------------------


def test_a_destination_down_for_the_first_attempts_is_retried_within_the_run(harness, remote_drop):
    harness.add_due("KSS", RUN_DATE, count=2)
    remote_drop.gate.refuse_next(2)

    result = harness.run(RUN_DATE, "KSS")

    assert result.success, failure_message(result)
    assert remote_drop.gate.refused == 2
    if remote_drop.kind == "sftp":
        assert retries(result) == 2  # one refused connection per attempt
    else:
        assert retries(result) >= 1  # boto3 may reconnect once within an attempt on its own
    assert_all_invariants(harness, remote_drop)


@each_stream
def test_a_destination_down_for_a_whole_run_loses_nothing_and_the_next_run_delivers_the_backlog_first(
    harness, remote_drop
):
    first = harness.add_due("OXF", RUN_DATE, count=2)
    remote_drop.gate.refuse_all()

    failed = harness.run(RUN_DATE, "OXF")

    assert not failed.success
    message = failure_message(failed)
    assert remote_drop.where() in message and "the next run of the deanery delivers them" in message
    assert retries(failed) == 5
    backlog = harness.file_name("OXF", RUN_DATE, 1)
    assert (harness.export_dir / backlog).exists()
    assert harness.records.count_documents({"status": EXPORTED, "exportedFileName": backlog}) == len(first)
    assert harness.database[EXPORT_FILE].find_one({"_id": backlog})["undelivered"] is True
    assert remote_drop.view().stored() == {}

    remote_drop.gate.open()
    harness.add_due("OXF", NEXT_DATE, count=1)
    result = harness.run(NEXT_DATE, "OXF")

    assert result.success, failure_message(result)
    materialization = next(
        e.materialization for e in result.get_asset_materialization_events() if e.asset_key == harness.file_asset_key
    )
    assert [record.data["file"] for record in materialization.metadata["delivered_files"].records] == [
        backlog,
        harness.file_name("OXF", NEXT_DATE, 2),
    ]
    assert_all_invariants(harness, remote_drop)


def test_refused_credentials_fail_the_run_naming_the_destination_and_the_next_run_delivers(
    harness, remote_drop, monkeypatch
):
    harness.add_due("MER", RUN_DATE, count=2)
    remote_drop.refuse_credentials(monkeypatch)
    harness.delivery = remote_drop.resource()

    failed = harness.run(RUN_DATE, "MER")

    assert not failed.success
    message = failure_message(failed)
    assert remote_drop.where() in message and "refused the" in message
    assert retries(failed) == 5
    for secret in remote_drop.secrets():
        assert secret not in message

    remote_drop.accept_credentials(monkeypatch)
    harness.delivery = remote_drop.resource()
    harness.run_ok(NEXT_DATE, "MER")
    assert_all_invariants(harness, remote_drop)


def test_a_name_taken_by_other_bytes_stops_only_that_file_and_is_delivered_once_cleared(harness, drop):
    harness.add_due("SEV", RUN_DATE, count=2)
    harness.add_due("SEV", NEXT_DATE, count=2)
    taken, other = harness.file_name("SEV", RUN_DATE, 1), harness.file_name("SEV", NEXT_DATE, 2)
    drop.plant(taken, b"someone else's file\n")

    result = harness.run_range(RUN_DATE, NEXT_DATE, "SEV", "SEV")

    assert not result.success
    message = failure_message(result)
    assert f"{taken} already exists at" in message and "was not overwritten" in message
    assert retries(result) == 0
    assert harness.database[EXPORT_FILE].find_one({"_id": other})["delivered"]["sha256"]
    assert harness.database[EXPORT_FILE].find_one({"_id": taken})["undelivered"] is True
    assert drop.view().stored()[taken] == [b"someone else's file\n"]

    drop.take_away(taken)
    harness.run_ok(NEXT_DATE, "SEV")
    assert_all_invariants(harness, drop)


@each_stream
def test_a_run_killed_between_the_put_and_the_ledger_is_recorded_by_the_next_without_a_second_put(
    harness, remote_drop, fault_proxy
):
    harness.add_due("WES", RUN_DATE, count=3)
    held = fault_proxy.add(Rule(kill_points.records_delivery, "hold"))

    killed = harness.start_subprocess_run(RUN_DATE, "WES", uri=fault_proxy.uri)
    kill_points.wait_until_reached(held, killed)
    killed.kill()
    killed.wait()
    fault_proxy.clear()

    name = harness.file_name("WES", RUN_DATE, 1)
    assert list(remote_drop.view().stored()) == [name]  # put, but not recorded
    assert harness.database[EXPORT_FILE].find_one({"_id": name})["undelivered"] is True

    summary = harness.run_ok(RUN_DATE, "WES")

    (delivered,) = summary["delivered_by_this_run"]
    assert (delivered["name"], delivered["already_there"]) == (name, True)
    assert harness.records.count_documents({"status": TO_EXPORT}) == 0
    assert_all_invariants(harness, remote_drop)


# -- re-send ----------------------------------------------------------------------------------------


def run_resend(harness, file_name: str):
    return resend_export_file.execute_in_process(
        run_config={**QUIET_LOGS, "ops": {"resend_export_file_to_esr": {"config": {"file_name": file_name}}}},
        resources={
            "mongodb": harness.resources()["mongodb"],
            "export_directory": harness.resources()["export_directory"],
            "delivery": harness.delivery,
        },
        instance=harness.instance,
        raise_on_error=False,
    )


def test_a_file_esr_asks_for_again_is_resent_from_the_checked_archive_and_recorded(harness, drop):
    harness.add_due("NWN", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "NWN")
    name = harness.file_name("NWN", RUN_DATE, 1)
    drop.take_away(name)  # ESR picked it up, then lost it

    result = run_resend(harness, name)

    assert result.success, failure_message(result)
    entry = harness.database[EXPORT_FILE].find_one({"_id": name})
    (resend,) = entry["resends"]
    assert (resend["sha256"], resend["alreadyThere"]) == (entry["sha256"], False)
    stored = drop.view().stored()[name]
    assert stored[-1] == (harness.export_dir / name).read_bytes()
    assert_export_invariants(harness.database, harness.export_dir, harness.stream)


def test_resend_refuses_a_name_the_ledger_does_not_hold_and_a_tampered_archive(harness, drop):
    harness.add_due("EOE", RUN_DATE, count=2)
    harness.run_ok(RUN_DATE, "EOE")
    name = harness.file_name("EOE", RUN_DATE, 1)

    unknown = run_resend(harness, harness.file_name("EOE", RUN_DATE, 7))
    not_a_name = run_resend(harness, "../../etc/passwd")
    drop.take_away(name)
    archived = harness.export_dir / name
    archived.write_bytes(archived.read_bytes() + b"tampered\n")
    tampered = run_resend(harness, name)

    assert (
        not unknown.success
        and "The file ledger holds no file named DE_EOE_APP_20210731_00000007.DAT" in failure_message(unknown)
    )
    assert not not_a_name.success and "is not an ESR export file name" in failure_message(not_a_name)
    assert not tampered.success and f"{name} in ESR_EXPORT_DIR does not match the file ledger" in failure_message(
        tampered
    )
    assert name not in drop.view().stored()
    assert "resends" not in harness.database[EXPORT_FILE].find_one({"_id": name})


# -- alerts and secrets -----------------------------------------------------------------------------


def test_a_file_undelivered_past_the_alert_time_is_announced_by_name_once_and_caught_up(harness, remote_drop):
    harness.add_due("LDN", RUN_DATE, count=1)
    remote_drop.gate.refuse_all()
    assert not harness.run(RUN_DATE, "LDN").success
    name = harness.file_name("LDN", RUN_DATE, 1)

    def tick(now: dt.datetime, cursor: str | None):
        with time_machine.travel(now, tick=False):
            return harness.tick_sensor(undelivered_files_sensor, cursor)

    now = dt.datetime.now(dt.UTC)
    early = tick(now + dt.timedelta(minutes=10), None)
    late = tick(now + dt.timedelta(minutes=31), early.cursor)
    again = tick(now + dt.timedelta(minutes=46), late.cursor)

    assert not early.run_requests
    (request,) = late.run_requests
    assert request.partition_key.keys_by_dimension == {"date": RUN_DATE.isoformat(), "deanery": "LDN"}
    assert name in late.cursor and not again.run_requests

    remote_drop.gate.open()
    harness.run_ok(RUN_DATE, "LDN")
    cleared = tick(now + dt.timedelta(minutes=61), again.cursor)
    assert name not in cleared.cursor
    for secret in remote_drop.secrets():
        assert secret not in late.cursor
    assert_all_invariants(harness, remote_drop)


def test_no_secret_appears_in_logs_metadata_alerts_or_errors(harness, remote_drop, monkeypatch, caplog):
    harness.add_due("EOE", RUN_DATE, count=2)
    remote_drop.refuse_credentials(monkeypatch)
    harness.delivery = remote_drop.resource()
    refused = harness.run(RUN_DATE, "EOE")
    remote_drop.accept_credentials(monkeypatch)
    harness.delivery = remote_drop.resource()
    delivered = harness.run(NEXT_DATE, "EOE")
    resent = run_resend(harness, harness.file_name("EOE", RUN_DATE, 1))

    assert not refused.success and delivered.success and resent.success
    shown = [caplog.text]
    for result in (refused, delivered, resent):
        for record in harness.instance.all_logs(result.run_id):
            shown.append(repr(record))
    shown.extend(repr(entry) for entry in harness.database[EXPORT_FILE].find())
    text = "\n".join(shown)
    assert remote_drop.where() in text  # the scan sees what the errors say
    secrets = remote_drop.secrets()
    assert secrets
    for secret in secrets:
        assert secret not in text, "a secret was shown"
    assert_all_invariants(harness, remote_drop)


def test_every_file_delivered_fails_for_the_partition_while_its_file_waits(harness, remote_drop):
    from esr_export_dagster.delivery_checks import partition_deliveries

    harness.add_due("PEN", RUN_DATE, count=1)
    remote_drop.gate.refuse_all()
    assert not harness.run(RUN_DATE, "PEN").success
    name = harness.file_name("PEN", RUN_DATE, 1)

    assert partition_deliveries(harness.database, harness.stream, {"PEN": [RUN_DATE]}) == ([], [name])
    remote_drop.gate.open()
    result = harness.run(RUN_DATE, "PEN")

    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "every_file_delivered"]
    assert evaluation.passed
    assert [f["name"] for f in evaluation.metadata["delivered"].value] == [name]
    assert evaluation.metadata["undelivered"].value == []
    assert_all_invariants(harness, remote_drop)
