"""The delivery resource: where ESR's drop is (ESR_DELIVERY_URL) and how to reach it, with no secret in it."""

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from .domain.delivery_url import LOCAL, S3, DeliveryTarget, parse_delivery_url
from .storage.delivery import Destination, LocalFolderDestination, S3Destination, SftpDestination

DEFAULT_LOCAL_DROP = ".local/esr-drop"
DEFAULT_UNDELIVERED_ALERT_MINUTES = 30


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
