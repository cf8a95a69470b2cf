"""The delivery resource: where ESR's drop is (ESR_DELIVERY_URL) and how to reach it, with no secret in it."""

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from .domain.delivery_url import LOCAL, S3, DeliveryTarget, parse_delivery_url, parse_inbound_url
from .settings import CONFIRMATION_DEADLINE_HOURS, DELIVERY_ALERT_MINUTES, DELIVERY_DIR, INBOUND_DIR
from .storage.delivery import Destination, LocalFolderDestination, S3Destination, SftpDestination
from .storage.inbound import InboundLocation, LocalInbound, S3Inbound, SftpInbound

# The defaults are the settings' own (settings.py), so the resource built in code and the one built from the
# environment cannot disagree.
DEFAULT_LOCAL_DROP = str(DELIVERY_DIR.default)
DEFAULT_LOCAL_INBOUND = str(INBOUND_DIR.default)
DEFAULT_CONFIRMATION_DEADLINE_HOURS = int(str(CONFIRMATION_DEADLINE_HOURS.default))
DEFAULT_UNDELIVERED_ALERT_MINUTES = int(str(DELIVERY_ALERT_MINUTES.default))


class DeliveryResource(ConfigurableResource):
    """ESR's drop: an S3 bucket, an SFTP folder, or (unset) a local folder standing in for it."""

    url: str = Field(
        default="",
        description="ESR_DELIVERY_URL: s3://bucket/prefix or sftp://user@host:port/path; empty: the local drop folder.",
    )
    local_folder: str = Field(
        default=DEFAULT_LOCAL_DROP, description="ESR_DELIVERY_DIR: the local drop folder used when no URL is set."
    )
    ssh_key_file: str | None = Field(
        default=None, description="ESR_DELIVERY_SSH_KEY_FILE: the private key file for SFTP (never its contents)."
    )
    known_hosts_file: str | None = Field(
        default=None,
        description="ESR_DELIVERY_KNOWN_HOSTS: the known-hosts file the SFTP server's host key must be in.",
    )
    s3_kms_key_id: str | None = Field(
        default=None, description="ESR_DELIVERY_S3_KMS_KEY_ID: encrypt with this KMS key instead of S3's AES256."
    )
    # Credentials, region and endpoint come from boto3's standard chain (AWS_* variables, web identity,
    # instance role) unless this sets them.
    s3: S3Resource | None = None
    sftp_timeout_seconds: int = Field(default=15, description="Connect, banner and authentication timeout for SFTP.")
    undelivered_alert_minutes: int = Field(
        default=DEFAULT_UNDELIVERED_ALERT_MINUTES,
        description="ESR_DELIVERY_ALERT_MINUTES: alert when a written file is still undelivered after this long.",
    )

    inbound_url: str = Field(
        default="",
        description="ESR_INBOUND_URL: where ESR leaves its APC/DCC confirmations (s3://, sftp://); empty: a local folder.",
    )
    inbound_local_folder: str = Field(
        default=DEFAULT_LOCAL_INBOUND, description="ESR_INBOUND_DIR: the local inbound folder used when no URL is set."
    )
    confirmation_deadline_hours: int = Field(
        default=DEFAULT_CONFIRMATION_DEADLINE_HOURS,
        description="ESR_CONFIRMATION_DEADLINE_HOURS: alert when a delivered file has no confirmation after this long.",
    )

    def inbound_target(self) -> DeliveryTarget:
        return parse_inbound_url(self.inbound_url, self.inbound_local_folder)

    def inbound(self) -> InboundLocation:
        """ESR's inbound location, with the drop's credentials; the first read connects."""
        target = self.inbound_target()
        if target.scheme == LOCAL:
            return LocalInbound(target)
        if target.scheme == S3:
            return S3Inbound(target, (self.s3 or S3Resource()).get_client())
        return SftpInbound(target, self.ssh_key_file, self.known_hosts_file, self.sftp_timeout_seconds)

    def target(self) -> DeliveryTarget:
        return parse_delivery_url(self.url, self.local_folder)

    def destination(self) -> Destination:
        """A new connection-less destination; the first put connects (use it as a context manager)."""
        target = self.target()
        if target.scheme == LOCAL:
            return LocalFolderDestination(target)
        if target.scheme == S3:
            return S3Destination(target, (self.s3 or S3Resource()).get_client(), self.s3_kms_key_id)
        return SftpDestination(target, self.ssh_key_file, self.known_hosts_file, self.sftp_timeout_seconds)
