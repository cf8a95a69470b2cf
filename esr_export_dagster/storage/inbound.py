"""Reading ESR's confirmations from the inbound location: an S3 prefix, an SFTP folder, or a local folder.

The same targets, credentials and connection code as delivery (``storage/delivery.py``). Each location
lists the confirmation files it holds (any other name is left alone), reads one whole, and moves an
unreadable one aside into ``unreadable/`` beside it. Where the location refuses that (ESR's side is often
read-only), nothing is moved and the caller marks the file in its own records instead.
"""

from __future__ import annotations

import errno
import posixpath
from abc import abstractmethod
from pathlib import Path
from typing import Any

from ..domain.confirmation_file import parse_confirmation_file_name
from ..domain.delivery_url import DeliveryTarget
from .delivery import (
    DeliveryConfigurationError,
    DeliveryUnavailableError,
    EsrLocation,
    SftpDestination,
    s3_error_code,
    s3_http_status,
)

UNREADABLE_FOLDER = "unreadable"
# A location that refuses writes (a read-only mount, no write permission): files are marked, not moved.
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


def is_confirmation_name(name: str) -> bool:
    try:
        parse_confirmation_file_name(name)
    except ValueError:
        return False
    return True


class InboundLocation(EsrLocation):
    """ESR's inbound location, where its confirmations arrive."""

    @abstractmethod
    def names(self) -> list[str]:
        """The confirmation files there now, sorted."""

    @abstractmethod
    def read(self, name: str) -> bytes:
        """One file's bytes."""

    @abstractmethod
    def move_aside(self, name: str) -> str | None:
        """Move ``name`` into ``unreadable/``; its new location, or None when the location refuses writes."""


class LocalInbound(InboundLocation):
    def __init__(self, target: DeliveryTarget) -> None:
        self.target = target
        self.path = Path(target.path)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.is_file() and is_confirmation_name(p.name))

    def read(self, name: str) -> bytes:
        parse_confirmation_file_name(name)  # only allow-listed names ever become paths
        try:
            return (self.path / name).read_bytes()
        except OSError as error:
            raise DeliveryUnavailableError(
                f"Could not read {name} from the {self.describe()}: {error.strerror or error.__class__.__name__}"
                f" ({errno.errorcode.get(error.errno or 0, 'no code')})"
            ) from None

    def move_aside(self, name: str) -> str | None:
        parse_confirmation_file_name(name)
        aside = self.path / UNREADABLE_FOLDER / name
        try:
            aside.parent.mkdir(mode=0o700, exist_ok=True)
            (self.path / name).rename(aside)
        except OSError as error:
            if error.errno in _READ_ONLY:
                return None
            raise DeliveryUnavailableError(
                f"Could not move {name} aside in the {self.describe()}: {error.strerror or error.__class__.__name__}"
            ) from None
        return str(aside)


class S3Inbound(InboundLocation):
    def __init__(self, target: DeliveryTarget, client: Any) -> None:
        self.target = target
        self.client = client

    def _prefix(self) -> str:
        return f"{self.target.path}/" if self.target.path else ""

    def names(self) -> list[str]:
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.target.host, Prefix=self._prefix(), Delimiter="/"
            ):
                found.extend(obj["Key"][len(self._prefix()) :] for obj in page.get("Contents", []))
        except Exception as error:
            raise self._classified("listing", error) from None
        return sorted(name for name in found if is_confirmation_name(name))

    def read(self, name: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.target.host, Key=self.target.location(name))["Body"].read()
        except Exception as error:
            raise self._classified(f"reading {name}", error) from None

    def move_aside(self, name: str) -> str | None:
        from botocore.exceptions import ClientError

        key = self.target.location(name)
        aside = f"{self._prefix()}{UNREADABLE_FOLDER}/{name}"
        try:
            self.client.copy_object(
                Bucket=self.target.host, Key=aside, CopySource={"Bucket": self.target.host, "Key": key}
            )
            self.client.delete_object(Bucket=self.target.host, Key=key)
        except ClientError as error:
            if s3_http_status(error) == 403 or s3_error_code(error) == "AccessDenied":
                return None
            raise self._classified(f"moving {name} aside", error) from None
        return f"s3://{self.target.host}/{aside}"

    def _classified(self, doing: str, error: Exception) -> Exception:
        from botocore.exceptions import ClientError

        where = f"S3 bucket {self.target.host} (inbound prefix {self.target.path or '/'})"
        if isinstance(error, ClientError):
            if s3_error_code(error) == "NoSuchBucket":
                return DeliveryConfigurationError(f"{where} does not exist ({doing}): check ESR_INBOUND_URL")
            return DeliveryUnavailableError(
                f"{where} failed {doing}: {s3_error_code(error)} (HTTP {s3_http_status(error)})"
            )
        return DeliveryUnavailableError(f"{where} is unreachable {doing}: {error.__class__.__name__}")


class SftpInbound(InboundLocation):
    """The inbound folder on an SFTP server, reached with delivery's connection (key, known hosts)."""

    def __init__(self, target: DeliveryTarget, key_file: str | None, known_hosts: str | None, timeout: float) -> None:
        self.target = target
        self._connection = SftpDestination(target, key_file, known_hosts, timeout)

    def close(self) -> None:
        self._connection.close()

    def _where(self) -> str:
        return f"SFTP server {self.target.host}:{self.target.port} (inbound folder {self.target.path})"

    def names(self) -> list[str]:
        sftp = self._connection.connected_sftp()
        try:
            listed = sftp.listdir(self.target.path)
        except FileNotFoundError:
            raise DeliveryConfigurationError(f"{self._where()} has no such folder: check ESR_INBOUND_URL") from None
        except Exception as error:
            self.close()
            raise DeliveryUnavailableError(f"{self._where()} failed listing: {error.__class__.__name__}") from None
        return sorted(name for name in listed if is_confirmation_name(name))

    def read(self, name: str) -> bytes:
        parse_confirmation_file_name(name)
        sftp = self._connection.connected_sftp()
        try:
            with sftp.open(self.target.location(name), "rb") as remote:
                return remote.read()
        except Exception as error:
            self.close()
            raise DeliveryUnavailableError(
                f"{self._where()} failed reading {name}: {error.__class__.__name__}"
            ) from None

    def move_aside(self, name: str) -> str | None:
        parse_confirmation_file_name(name)
        sftp = self._connection.connected_sftp()
        folder = posixpath.join(self.target.path, UNREADABLE_FOLDER)
        aside = posixpath.join(folder, name)
        try:
            try:
                sftp.mkdir(folder, 0o700)
            except OSError:
                pass  # there already, or refused: the rename below says which
            sftp.rename(self.target.location(name), aside)
        except PermissionError:
            return None
        except OSError as error:
            raise DeliveryUnavailableError(
                f"{self._where()} failed moving {name} aside: {error.__class__.__name__}"
            ) from None
        return aside
