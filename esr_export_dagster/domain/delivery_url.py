"""Where export files are delivered: ESR's drop, named by one setting, ``ESR_DELIVERY_URL``.

* ``s3://bucket/prefix``: ESR's S3 bucket (AWS Transfer Family serves it to ESR as SFTP); the object key
  is ``<prefix>/<file name>``.
* ``sftp://user@host:port/path``: a plain SFTP server (the older interface); port 22 when omitted.
* unset or empty: a local "ESR drop" folder, so that a machine without any cloud shows the whole journey.

Credentials never go in the URL (a password in it is refused): S3 takes boto3's standard credential chain,
SFTP a key file named by configuration. Errors name the part that is wrong, never the URL itself, which
could hold a secret pasted by mistake.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

LOCAL = "local"
S3 = "s3"
SFTP = "sftp"

# S3's bucket naming rules (3-63 characters, lower case, digits, dots and hyphens).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


class DeliveryUrlError(ValueError):
    """ESR_DELIVERY_URL cannot be used; the message names what is wrong, never the URL's text."""


@dataclass(frozen=True)
class DeliveryTarget:
    """A parsed delivery destination."""

    scheme: str
    # s3: the bucket; sftp: the host; local: empty
    host: str = ""
    # s3: the key prefix without slashes at its ends; sftp: the absolute remote folder; local: the folder
    path: str = ""
    user: str = ""
    port: int = 22

    def location(self, file_name: str) -> str:
        """The S3 key or remote path a file is put under."""
        if self.scheme == S3:
            return f"{self.path}/{file_name}" if self.path else file_name
        return posixpath.join(self.path, file_name)

    def describe(self) -> str:
        """The destination as shown in logs, metadata and alerts: no credential is part of it."""
        if self.scheme == S3:
            return f"s3://{self.host}/{self.path}" if self.path else f"s3://{self.host}"
        if self.scheme == SFTP:
            return f"sftp://{self.user}@{self.host}:{self.port}{self.path}"
        return f"local folder {self.path}"


def parse_delivery_url(url: str | None, local_folder: str) -> DeliveryTarget:
    """The destination ``url`` names; unset or blank means ``local_folder``."""
    if url is None or not url.strip():
        if not local_folder.strip():
            raise DeliveryUrlError(
                "ESR_DELIVERY_URL is unset and no local drop folder is configured (ESR_DELIVERY_DIR)"
            )
        return DeliveryTarget(LOCAL, path=local_folder)
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise DeliveryUrlError("ESR_DELIVERY_URL is not a URL with a valid host and port") from None
    scheme = parts.scheme.lower()
    if scheme not in (S3, SFTP):
        raise DeliveryUrlError(
            f"ESR_DELIVERY_URL has scheme {scheme or 'none'!r}: use s3://bucket/prefix or sftp://user@host:port/path"
        )
    if parts.password is not None:
        raise DeliveryUrlError(
            "ESR_DELIVERY_URL holds a password: credentials never go in the URL (S3: boto3's credential chain; "
            "SFTP: ESR_DELIVERY_SSH_KEY_FILE). Remove it, and change that password: it has been in configuration."
        )
    if parts.query or parts.fragment:
        raise DeliveryUrlError("ESR_DELIVERY_URL has a query or fragment (?... or #...), which no destination takes")
    if scheme == S3:
        return _s3_target(parts.hostname or "", parts.path, parts.username, port)
    return _sftp_target(parts.hostname or "", parts.path, parts.username, port)


def _s3_target(bucket: str, path: str, user: str | None, port: int | None) -> DeliveryTarget:
    if user is not None or port is not None:
        raise DeliveryUrlError("ESR_DELIVERY_URL: an s3:// URL names a bucket and a prefix only (no user, no port)")
    if not _BUCKET.match(bucket):
        raise DeliveryUrlError(
            "ESR_DELIVERY_URL: the S3 bucket name must be 3 to 63 lower-case letters, digits, dots or hyphens"
        )
    prefix = path.strip("/")
    if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
        raise DeliveryUrlError("ESR_DELIVERY_URL: the S3 prefix has an empty, '.' or '..' segment")
    return DeliveryTarget(S3, host=bucket, path=prefix)


def _sftp_target(host: str, path: str, user: str | None, port: int | None) -> DeliveryTarget:
    if not host:
        raise DeliveryUrlError("ESR_DELIVERY_URL: an sftp:// URL needs a host")
    if not user:
        raise DeliveryUrlError("ESR_DELIVERY_URL: an sftp:// URL needs a user (sftp://user@host:port/path)")
    if not _USER.match(user):
        raise DeliveryUrlError("ESR_DELIVERY_URL: the SFTP user name may hold letters, digits, '.', '_' and '-' only")
    if ".." in path.split("/"):
        raise DeliveryUrlError("ESR_DELIVERY_URL: the SFTP path must be an absolute folder without '..'")
    folder = posixpath.normpath(path) if path else "/"
    if not folder.startswith("/"):
        raise DeliveryUrlError("ESR_DELIVERY_URL: the SFTP path must be an absolute folder without '..'")
    return DeliveryTarget(SFTP, host=host, path=folder, user=user, port=port or 22)


def parse_inbound_url(url: str | None, local_folder: str) -> DeliveryTarget:
    """Where ESR leaves its confirmations, ``ESR_INBOUND_URL``: the same forms and rules as the drop's URL;
    unset or blank means the local inbound folder ``ESR_INBOUND_DIR``."""
    try:
        return parse_delivery_url(url, local_folder)
    except DeliveryUrlError as error:
        text = str(error).replace("ESR_DELIVERY_URL", "ESR_INBOUND_URL").replace("ESR_DELIVERY_DIR", "ESR_INBOUND_DIR")
        raise DeliveryUrlError(text) from None
