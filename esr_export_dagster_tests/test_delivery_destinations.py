"""ESR's drop as each destination offers it, against real servers: a local folder, moto's S3 server and an
OpenSSH sshd. A file is put once under its name; the same bytes already there is success without a second
object; other bytes are never overwritten; a destination that is down or refuses the credentials, or whose
host key is unknown, fails with an error naming the destination and no secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esr_export_dagster.domain.delivery_url import (
    LOCAL,
    S3,
    SFTP,
    DeliveryTarget,
    DeliveryUrlError,
    parse_delivery_url,
)
from esr_export_dagster.storage.delivery import (
    DeliveryConfigurationError,
    DeliveryUnavailableError,
    LocalFolderDestination,
    S3Destination,
    SftpDestination,
)
from esr_export_dagster.storage.errors import ExportFileConflictError

from .delivery_servers import FAKE_AWS_SECRET_ACCESS_KEY, closed_port

NAME = "DE_EOE_APP_20210731_00000001.DAT"
CONTENT = b"line one\nline two\n"


# -- ESR_DELIVERY_URL -------------------------------------------------------------------------------


def test_an_unset_delivery_url_means_the_local_drop_folder():
    assert parse_delivery_url(None, ".local/esr-drop") == DeliveryTarget(LOCAL, path=".local/esr-drop")
    assert parse_delivery_url("  ", "/srv/drop").path == "/srv/drop"


def test_an_s3_url_names_bucket_and_prefix_and_the_key_is_prefix_slash_name():
    target = parse_delivery_url("s3://esr-drop-bucket/outbound/tis/", "")
    assert (target.scheme, target.host, target.path) == (S3, "esr-drop-bucket", "outbound/tis")
    assert target.location(NAME) == f"outbound/tis/{NAME}"
    assert parse_delivery_url("s3://esr-drop-bucket", "").location(NAME) == NAME


def test_an_sftp_url_names_user_host_port_and_folder():
    target = parse_delivery_url("sftp://tis@esr.example.nhs.uk:2222/inbound", "")
    assert (target.scheme, target.user, target.host, target.port, target.path) == (
        SFTP,
        "tis",
        "esr.example.nhs.uk",
        2222,
        "/inbound",
    )
    assert target.location(NAME) == f"/inbound/{NAME}"
    assert parse_delivery_url("sftp://tis@esr.example.nhs.uk", "").port == 22


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host/path", "scheme 'ftp'"),
        ("s3://UPPER_case/x", "bucket name"),
        ("s3://user@esr-drop/x", "bucket and a prefix only"),
        ("s3://esr-drop/a//b", "empty, '.' or '..' segment"),
        ("sftp://host/path", "needs a user"),
        ("sftp://tis@host/../etc", "without '..'"),
        ("sftp://tis@host:notaport/x", "valid host and port"),
        ("s3://esr-drop/x?versionId=1", "query or fragment"),
    ],
)
def test_a_bad_delivery_url_is_refused_naming_what_is_wrong(url, words):
    with pytest.raises(DeliveryUrlError) as refused:
        parse_delivery_url(url, "")
    assert words in str(refused.value)


def test_a_password_in_the_delivery_url_is_refused_without_repeating_it():
    with pytest.raises(DeliveryUrlError) as refused:
        parse_delivery_url("sftp://tis:Hunter2Secret@host/inbound", "")
    assert "password" in str(refused.value)
    assert "Hunter2Secret" not in str(refused.value)


# -- local folder -----------------------------------------------------------------------------------


def test_the_local_drop_takes_a_file_once_and_never_overwrites(tmp_path: Path):
    drop = LocalFolderDestination(parse_delivery_url(None, str(tmp_path / "drop")))

    first = drop.put_if_absent(NAME, CONTENT)
    again = drop.put_if_absent(NAME, CONTENT)

    assert (tmp_path / "drop" / NAME).read_bytes() == CONTENT
    assert (first.already_there, again.already_there) == (False, True)
    assert first.size == len(CONTENT) and first.sha256 == again.sha256
    assert first.location == str(tmp_path / "drop" / NAME)
    assert os.listdir(tmp_path / "drop") == [NAME]  # no temporary file left
    with pytest.raises(ExportFileConflictError, match=f"{NAME} already exists at local folder .* other bytes"):
        drop.put_if_absent(NAME, b"other bytes\n")
    assert (tmp_path / "drop" / NAME).read_bytes() == CONTENT


# -- S3 ---------------------------------------------------------------------------------------------


def s3_destination(moto_s3, bucket: str, endpoint_url: str | None = None, **kwargs) -> S3Destination:
    return S3Destination(parse_delivery_url(f"s3://{bucket}/outbound", ""), moto_s3.client(endpoint_url), **kwargs)


def test_s3_puts_once_conditionally_encrypted_and_finds_its_own_bytes_on_a_retry(moto_s3):
    bucket = moto_s3.new_bucket()
    drop = s3_destination(moto_s3, bucket)

    first = drop.put_if_absent(NAME, CONTENT)
    again = drop.put_if_absent(NAME, CONTENT)

    client = moto_s3.client()
    stored = client.get_object(Bucket=bucket, Key=f"outbound/{NAME}")
    assert stored["Body"].read() == CONTENT
    assert stored["ServerSideEncryption"] == "AES256"
    assert (first.already_there, again.already_there) == (False, True)
    assert first.etag and first.etag == again.etag
    versions = client.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["Key"] for v in versions] == [f"outbound/{NAME}"]  # one object, never put twice


def test_s3_uses_the_configured_kms_key(moto_s3):
    bucket = moto_s3.new_bucket()
    s3_destination(moto_s3, bucket, kms_key_id="alias/esr-drop").put_if_absent(NAME, CONTENT)

    head = moto_s3.client().head_object(Bucket=bucket, Key=f"outbound/{NAME}")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/esr-drop")


def test_s3_never_overwrites_an_object_with_other_bytes(moto_s3):
    bucket = moto_s3.new_bucket()
    moto_s3.client().put_object(Bucket=bucket, Key=f"outbound/{NAME}", Body=b"someone else's file\n")

    with pytest.raises(ExportFileConflictError, match=f"{NAME} already exists at s3://{bucket}/outbound"):
        s3_destination(moto_s3, bucket).put_if_absent(NAME, CONTENT)
    assert moto_s3.client().get_object(Bucket=bucket, Key=f"outbound/{NAME}")["Body"].read() == b"someone else's file\n"


def test_s3_down_is_unavailable_naming_bucket_and_endpoint(moto_s3):
    port = closed_port()
    with pytest.raises(DeliveryUnavailableError, match=f"S3 bucket esr-drop-x at 127.0.0.1:{port} is unreachable"):
        s3_destination(moto_s3, "esr-drop-x", endpoint_url=f"http://127.0.0.1:{port}").put_if_absent(NAME, CONTENT)


def test_s3_refusing_the_credentials_is_unavailable_and_never_shows_them(moto_s3, monkeypatch):
    from moto import settings

    # moto checks keys and signatures once IAM authentication is on (the server runs in this process).
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=moto_s3.endpoint_url,
        region_name="eu-west-2",
        aws_access_key_id="AKIAWRONGWRONGWRONG1",
        aws_secret_access_key=FAKE_AWS_SECRET_ACCESS_KEY,
    )
    destination = S3Destination(parse_delivery_url("s3://esr-drop-denied/outbound", ""), client)
    with pytest.raises(
        DeliveryUnavailableError,
        match="S3 bucket esr-drop-denied at 127.0.0.1:.* refused the credentials \\(InvalidAccessKeyId\\)",
    ) as refused:
        destination.put_if_absent(NAME, CONTENT)
    message = str(refused.value)
    assert FAKE_AWS_SECRET_ACCESS_KEY not in message and "AKIAWRONGWRONGWRONG1" not in message


# -- SFTP -------------------------------------------------------------------------------------------


def sftp_destination(sshd_server, folder: Path, port: int | None = None, **kwargs) -> SftpDestination:
    settings = {"key_file": str(sshd_server.user_key_file), "known_hosts_file": str(sshd_server.known_hosts_file)}
    settings.update(kwargs)
    return SftpDestination(parse_delivery_url(sshd_server.url(folder, port), ""), timeout_seconds=5, **settings)


def test_sftp_puts_under_a_temporary_name_renamed_once_and_finds_its_own_bytes_on_a_retry(sshd_server):
    folder = sshd_server.new_folder()
    with sftp_destination(sshd_server, folder) as drop:
        first = drop.put_if_absent(NAME, CONTENT)
        again = drop.put_if_absent(NAME, CONTENT)

    assert (folder / NAME).read_bytes() == CONTENT
    assert os.listdir(folder) == [NAME]
    assert (first.already_there, again.already_there) == (False, True)
    assert first.location == f"{folder}/{NAME}"


def test_sftp_never_overwrites_a_remote_file_with_other_bytes(sshd_server):
    folder = sshd_server.new_folder()
    (folder / NAME).write_bytes(b"someone else's file\n")

    with sftp_destination(sshd_server, folder) as drop, pytest.raises(ExportFileConflictError, match=NAME):
        drop.put_if_absent(NAME, CONTENT)
    assert (folder / NAME).read_bytes() == b"someone else's file\n"
    assert os.listdir(folder) == [NAME]


def test_sftp_refuses_an_unknown_host_key(sshd_server, tmp_path: Path):
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    folder = sshd_server.new_folder()

    with pytest.raises(DeliveryConfigurationError, match="not in ESR_DELIVERY_KNOWN_HOSTS"):
        sftp_destination(sshd_server, folder, known_hosts_file=str(empty_known_hosts)).put_if_absent(NAME, CONTENT)
    assert os.listdir(folder) == []


def test_sftp_refuses_a_host_key_that_changed(sshd_server, tmp_path: Path):
    other_key = tmp_path / "other_host_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other_key}")
    kind, key = other_key.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd_server.port} {kind} {key}\n")

    with pytest.raises(DeliveryConfigurationError, match="does not match ESR_DELIVERY_KNOWN_HOSTS"):
        sftp_destination(sshd_server, sshd_server.new_folder(), known_hosts_file=str(wrong)).put_if_absent(
            NAME, CONTENT
        )


def test_sftp_refusing_the_key_is_unavailable_and_never_shows_it(sshd_server, tmp_path: Path):
    stranger = tmp_path / "stranger_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {stranger}")

    with pytest.raises(DeliveryUnavailableError, match=f"127.0.0.1:{sshd_server.port} .* refused the key") as refused:
        sftp_destination(sshd_server, sshd_server.new_folder(), key_file=str(stranger)).put_if_absent(NAME, CONTENT)
    key_body = "".join(stranger.read_text().splitlines()[1:-1])
    assert key_body[:20] not in str(refused.value)


def test_sftp_down_is_unavailable_naming_host_and_folder(sshd_server):
    port = closed_port()
    folder = sshd_server.new_folder()
    with pytest.raises(
        DeliveryUnavailableError, match=f"SFTP server 127.0.0.1:{port} \\(folder {folder}\\) is unreachable"
    ):
        sftp_destination(sshd_server, folder, port=port).put_if_absent(NAME, CONTENT)


def test_sftp_without_key_or_known_hosts_settings_is_a_configuration_error(sshd_server):
    folder = sshd_server.new_folder()
    with pytest.raises(DeliveryConfigurationError, match="ESR_DELIVERY_SSH_KEY_FILE is not set"):
        sftp_destination(sshd_server, folder, key_file=None).put_if_absent(NAME, CONTENT)
    with pytest.raises(DeliveryConfigurationError, match="ESR_DELIVERY_KNOWN_HOSTS is not set"):
        sftp_destination(sshd_server, folder, known_hosts_file=None).put_if_absent(NAME, CONTENT)
