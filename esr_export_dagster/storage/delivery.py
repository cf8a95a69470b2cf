"""Putting a file into ESR's drop exactly once: an S3 bucket, an SFTP folder, or a local folder.

Every destination offers one operation, ``put_if_absent``: the file appears under its name whole or not at
all, and a name already taken is never overwritten. A name that already holds exactly these bytes is this
very file, put by an attempt whose acknowledgement or ledger update was lost: that is success, and no
second object is made. A name holding other bytes stops that file with ``ExportFileConflictError``.

Errors say which destination (bucket, host, folder) and what went wrong in words and error codes, never a
credential, key content or the bytes of a file.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import posixpath
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from ..domain.delivery_url import DeliveryTarget
from ..domain.esr_csv import parse_export_file_name
from .errors import ExportFileConflictError, ExportStateError

_TEMP_PREFIX = ".partial-"
_FOLDER_MODE = 0o700
_FILE_MODE = 0o600
# S3 error codes meaning the credentials were refused (wrong, expired or without the right).
_S3_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "Forbidden",
}
_S3_MISCONFIGURED = {
    "NoSuchBucket",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "InvalidBucketName",
    "KMS.NotFoundException",
}


class DeliveryUnavailableError(RuntimeError):
    """The destination is down, unreachable or refuses the credentials: worth retrying, then a later run."""


class DeliveryConfigurationError(ExportStateError):
    """The delivery settings cannot work (unknown host key, missing key file, no such bucket): not retried."""


@dataclass(frozen=True)
class Receipt:
    """What the destination holds under the file's name after a put."""

    destination: str
    location: str
    size: int
    sha256: str
    etag: str | None
    # The same bytes were already there (an earlier attempt put them): nothing was put again.
    already_there: bool


class EsrLocation(ABC):  # noqa: B024 - shared plumbing; each kind of location declares its own abstract methods
    """A location at ESR's end (the drop, the inbound folder). Use as a context manager: a connection, if any,
    is opened once for many files."""

    target: DeliveryTarget

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - a location without a connection has nothing to release
        """Release the connection, if any."""

    def describe(self) -> str:
        return self.target.describe()


class Destination(EsrLocation):
    """ESR's drop."""

    @abstractmethod
    def put_if_absent(self, name: str, content: bytes) -> Receipt:
        """Put ``content`` under ``name`` unless the name is taken; same bytes there already is success."""

    def _receipt(self, name: str, content: bytes, etag: str | None, already_there: bool) -> Receipt:
        return Receipt(
            destination=self.describe(),
            location=self.target.location(name),
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            etag=etag,
            already_there=already_there,
        )

    def _conflict(self, name: str) -> ExportFileConflictError:
        return ExportFileConflictError(
            f"{name} already exists at {self.describe()} ({self.target.location(name)}) with other bytes: it was "
            "not overwritten, and this file was not delivered. Its records stay EXPORTED in the archived copy in "
            "ESR_EXPORT_DIR. Find out with ESR what the other file is (README, 'When something goes wrong'); once "
            "it is removed from the drop, the next run of the deanery delivers this file."
        )


class LocalFolderDestination(Destination):
    """A folder on this machine standing in for ESR's drop (``make run``); the same rules as the real ones."""

    def __init__(self, target: DeliveryTarget) -> None:
        self.target = target
        self.path = Path(target.path)

    def put_if_absent(self, name: str, content: bytes) -> Receipt:
        parse_export_file_name(name)  # only allow-listed names ever become paths
        final = self.path / name
        temp = self.path / f"{_TEMP_PREFIX}{name}.{uuid.uuid4().hex}"
        try:
            self.path.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
            descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                os.write(descriptor, content)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            try:
                # A hard link, unlike a rename, never replaces what is there.
                os.link(temp, final)
                already_there = False
            except FileExistsError:
                if not (final.is_file() and final.read_bytes() == content):
                    raise self._conflict(name) from None
                already_there = True
        except OSError as error:
            raise DeliveryConfigurationError(
                f"Could not put {name} into the {self.describe()}: {error.strerror or error.__class__.__name__}"
                f" ({errno.errorcode.get(error.errno or 0, 'no code')})."
            ) from None
        finally:
            temp.unlink(missing_ok=True)
        return self._receipt(name, content, None, already_there)


class S3Destination(Destination):
    """ESR's S3 bucket: a conditional put (``If-None-Match: *``), server-side encrypted."""

    def __init__(self, target: DeliveryTarget, client: Any, kms_key_id: str | None = None) -> None:
        self.target = target
        self.client = client
        self.kms_key_id = kms_key_id or None

    def put_if_absent(self, name: str, content: bytes) -> Receipt:
        from botocore.exceptions import ClientError

        key = self.target.location(name)
        encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
            if self.kms_key_id
            else {"ServerSideEncryption": "AES256"}
        )
        try:
            try:
                response = self.client.put_object(
                    Bucket=self.target.host,
                    Key=key,
                    Body=content,
                    IfNoneMatch="*",
                    # S3 checks the bytes it received against this before it stores the object.
                    ChecksumSHA256=base64.b64encode(hashlib.sha256(content).digest()).decode("ascii"),
                    **encryption,
                )
                return self._receipt(name, content, _etag(response), already_there=False)
            except ClientError as error:
                if s3_http_status(error) != 412 and s3_error_code(error) != "PreconditionFailed":
                    raise
            existing = self.client.get_object(Bucket=self.target.host, Key=key)
            body = existing["Body"].read()
            if body != content:
                raise self._conflict(name)
            return self._receipt(name, content, _etag(existing), already_there=True)
        except ExportFileConflictError:
            raise
        except Exception as error:  # botocore's errors, classified without their text (it can quote a request)
            raise self._classified(name, error) from None

    def _classified(self, name: str, error: Exception) -> Exception:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        where = f"S3 bucket {self.target.host} at {self._endpoint()}"
        if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
            return DeliveryConfigurationError(
                f"No AWS credentials for {where}: boto3's standard chain found none (environment, web identity, "
                f"instance role). {name} stays undelivered."
            )
        if isinstance(error, ClientError):
            code = s3_error_code(error)
            if code in _S3_REFUSED or s3_http_status(error) == 403:
                return DeliveryUnavailableError(
                    f"{where} refused the credentials ({code}) putting {name}: check the role or keys and that "
                    "they may s3:PutObject and s3:GetObject under the prefix (deploy/README.md)."
                )
            if code in _S3_MISCONFIGURED or s3_http_status(error) == 404:
                return DeliveryConfigurationError(f"{where} cannot take {name}: {code}. Check ESR_DELIVERY_URL.")
            return DeliveryUnavailableError(f"{where} failed putting {name}: {code} (HTTP {s3_http_status(error)})")
        return DeliveryUnavailableError(f"{where} is unreachable putting {name}: {error.__class__.__name__}")

    def _endpoint(self) -> str:
        endpoint = urlsplit(getattr(self.client.meta, "endpoint_url", "") or "")
        host = endpoint.hostname or "default endpoint"
        return f"{host}:{endpoint.port}" if endpoint.port else host


class SftpDestination(Destination):
    """A folder on an SFTP server: key authentication, a host key checked against a known-hosts file, and an
    upload under a temporary name renamed into place, so ESR never picks up half a file."""

    def __init__(
        self,
        target: DeliveryTarget,
        key_file: str | None,
        known_hosts_file: str | None,
        timeout_seconds: float = 15,
    ) -> None:
        self.target = target
        self.key_file = key_file or None
        self.known_hosts_file = known_hosts_file or None
        self.timeout_seconds = timeout_seconds
        self._client: Any = None
        self._sftp: Any = None

    @property
    def _where(self) -> str:
        return f"SFTP server {self.target.host}:{self.target.port} (folder {self.target.path})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    def put_if_absent(self, name: str, content: bytes) -> Receipt:
        parse_export_file_name(name)
        sftp = self.connected_sftp()
        final = self.target.location(name)
        temp = posixpath.join(self.target.path, f"{_TEMP_PREFIX}{name}.{uuid.uuid4().hex}")
        try:
            existing = self._read_if_present(sftp, final)
            if existing is None:
                sftp.putfo(io.BytesIO(content), temp, file_size=len(content), confirm=True)
                try:
                    # SFTP's own rename (not OpenSSH's posix-rename extension) refuses a name that is taken.
                    sftp.rename(temp, final)
                    return self._receipt(name, content, None, already_there=False)
                except OSError:
                    _remove_quietly(sftp, temp)
                    existing = self._read_if_present(sftp, final)
                    if existing is None:
                        raise
            if existing != content:
                raise self._conflict(name)
            return self._receipt(name, content, None, already_there=True)
        except ExportFileConflictError:
            raise
        except PermissionError:
            self.close()
            raise DeliveryConfigurationError(f"{self._where} refused writing {name}: permission denied") from None
        except FileNotFoundError:
            self.close()
            raise DeliveryConfigurationError(
                f"{self._where} has no folder {self.target.path} to put {name} in"
            ) from None
        except Exception as error:  # a connection lost mid-transfer, or the server failing the request
            self.close()
            raise DeliveryUnavailableError(
                f"{self._where} failed putting {name}: {error.__class__.__name__}; nothing half-written is left "
                "under the file's name"
            ) from None

    def _read_if_present(self, sftp: Any, path: str) -> bytes | None:
        try:
            with sftp.open(path, "rb") as remote:
                return remote.read()
        except FileNotFoundError:
            return None

    def connected_sftp(self) -> Any:
        """The SFTP session, opened on first use with the pinned host key; the inbound reader shares it."""
        if self._sftp is not None:
            return self._sftp
        import paramiko

        if not self.key_file:
            raise DeliveryConfigurationError(f"ESR_DELIVERY_SSH_KEY_FILE is not set: {self._where} needs a private key")
        if not self.known_hosts_file:
            raise DeliveryConfigurationError(
                f"ESR_DELIVERY_KNOWN_HOSTS is not set: the host key of {self._where} must be checked against a "
                "known-hosts file, and an unknown host key is never accepted"
            )
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(self.known_hosts_file)
        except OSError:
            raise DeliveryConfigurationError(
                f"ESR_DELIVERY_KNOWN_HOSTS {self.known_hosts_file} cannot be read"
            ) from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            key = paramiko.PKey.from_path(self.key_file)
        except Exception as error:  # paramiko's key errors may quote the file's first line: never shown
            raise DeliveryConfigurationError(
                f"ESR_DELIVERY_SSH_KEY_FILE {self.key_file} cannot be loaded as an unencrypted private key "
                f"({error.__class__.__name__})"
            ) from None
        try:
            client.connect(
                self.target.host,
                port=self.target.port,
                username=self.target.user,
                pkey=key,
                look_for_keys=False,
                allow_agent=False,
                timeout=self.timeout_seconds,
                banner_timeout=self.timeout_seconds,
                auth_timeout=self.timeout_seconds,
            )
            self._client = client
            self._sftp = client.open_sftp()
            return self._sftp
        except paramiko.BadHostKeyException:
            client.close()
            raise DeliveryConfigurationError(
                f"{self._where} presented a host key that does not match ESR_DELIVERY_KNOWN_HOSTS: nothing was "
                "sent. Confirm the new key with ESR before changing the known-hosts file."
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise DeliveryUnavailableError(
                f"{self._where} refused the key in ESR_DELIVERY_SSH_KEY_FILE for user {self.target.user}"
            ) from None
        except paramiko.SSHException as error:
            client.close()
            if "known_hosts" in str(error):
                raise DeliveryConfigurationError(
                    f"{self._where} is not in ESR_DELIVERY_KNOWN_HOSTS {self.known_hosts_file}: an unknown host "
                    "key is never accepted. Add the server's key, confirmed with ESR, to that file."
                ) from None
            raise DeliveryUnavailableError(
                f"{self._where} failed the SSH handshake ({error.__class__.__name__})"
            ) from None
        except (TimeoutError, OSError, EOFError) as error:
            client.close()
            raise DeliveryUnavailableError(f"{self._where} is unreachable ({error.__class__.__name__})") from None


def _remove_quietly(sftp: Any, path: str) -> None:
    try:
        sftp.remove(path)
    except Exception:  # best effort: a leftover temporary name is never picked up as a file
        pass


def s3_error_code(error: Any) -> str:
    """S3's error code from a botocore ClientError ("unknown" when the error carries none)."""
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", "unknown"))


def s3_http_status(error: Any) -> int | None:
    """The HTTP status of a botocore ClientError, if it carries one."""
    return getattr(error, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def _etag(response: Any) -> str | None:
    etag = response.get("ETag")
    return etag.strip('"') if isinstance(etag, str) else None
