"""Every setting the code location takes from the environment, declared once and read one way: through
Dagster's ``EnvVar`` (README, "Configuration", lists them all; a test keeps the two in step).

A setting is read at one of two moments, and only the first one possible:

* when a run (or sensor tick) builds its resources: a resource field is given the ``EnvVar`` itself, which
  Dagster resolves then and shows in the UI by name, never by value (``resource_value``). Secrets and
  everything a resource holds are read this way.
* when the code location loads, for what Dagster serialises with the definitions and so cannot wait for a
  resource: a schedule's cron, a sensor's minimum interval, the partitions' first date (``load_value``,
  which is ``EnvVar.get_value``).

The notification export time is needed at both moments: it is the DNC schedule's cron and the runs'
cut-off. Both read the same ``EnvVar`` with the same default, so a code server and its run workers, started
with the same environment (deploy/README.md), cannot fire the schedule at one time and cut off at another.

Unset and empty are the same: the default applies. ``esr_export_dagster/local`` (``make run``/``make dev``)
prepares this environment for a local Dagster and is the only other place the package touches it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import EnvVar

from .domain.sequence import SHARED_SCOPE


@dataclass(frozen=True)
class Setting:
    name: str
    # None: no default (required, or optional and then absent).
    default: str | None = None

    @property
    def is_set(self) -> bool:
        return bool(EnvVar(self.name).get_value())

    def required(self) -> EnvVar:
        """For a resource field the code location cannot run without: a run fails naming the variable."""
        return EnvVar(self.name)

    def resource_value(self) -> EnvVar | str | None:
        """For a resource field: the variable, resolved when the resources are built, or the default."""
        return EnvVar(self.name) if self.is_set else self.default

    def resource_int(self) -> int | None:
        """As ``resource_value``, for a whole number (``EnvVar.int`` is an ``int`` Dagster resolves)."""
        return EnvVar.int(self.name) if self.is_set else (int(self.default) if self.default is not None else None)

    def load_value(self) -> str | None:
        """For what the definitions need when they load (a cron, an interval, a first date)."""
        return EnvVar(self.name).get_value() or self.default


MONGODB_URI = Setting("ESR_MONGODB_URI")
MONGODB_DATABASE = Setting("ESR_MONGODB_DATABASE", "esr_export")
EXPORT_DIR = Setting("ESR_EXPORT_DIR")
TEAMS_WEBHOOK_URL = Setting("ESR_TEAMS_WEBHOOK_URL")
SLACK_TOKEN = Setting("ESR_SLACK_TOKEN")
SLACK_CHANNEL = Setting("ESR_SLACK_CHANNEL")
DAGSTER_UI_URL = Setting("ESR_DAGSTER_UI_URL", "http://127.0.0.1:3000")
STALE_SENSOR_INTERVAL_SECONDS = Setting("ESR_STALE_SENSOR_INTERVAL_SECONDS", "900")
FIRST_PARTITION_DATE = Setting("ESR_FIRST_PARTITION_DATE", "2021-07-01")
DELIVERY_URL = Setting("ESR_DELIVERY_URL", "")
DELIVERY_DIR = Setting("ESR_DELIVERY_DIR", ".local/esr-drop")
DELIVERY_SSH_KEY_FILE = Setting("ESR_DELIVERY_SSH_KEY_FILE")
DELIVERY_KNOWN_HOSTS = Setting("ESR_DELIVERY_KNOWN_HOSTS")
DELIVERY_S3_KMS_KEY_ID = Setting("ESR_DELIVERY_S3_KMS_KEY_ID")
DELIVERY_ALERT_MINUTES = Setting("ESR_DELIVERY_ALERT_MINUTES", "30")
INBOUND_URL = Setting("ESR_INBOUND_URL", "")
INBOUND_DIR = Setting("ESR_INBOUND_DIR", ".local/esr-drop/inbound")
CONFIRMATION_DEADLINE_HOURS = Setting("ESR_CONFIRMATION_DEADLINE_HOURS", "30")
SEQUENCE_SCOPE = Setting("ESR_SEQUENCE_SCOPE", SHARED_SCOPE)
NOTIFICATION_EXPORT_TIME_UTC = Setting("ESR_NOTIFICATION_EXPORT_TIME_UTC", "14:00")

SETTINGS: tuple[Setting, ...] = (
    MONGODB_URI,
    MONGODB_DATABASE,
    EXPORT_DIR,
    TEAMS_WEBHOOK_URL,
    SLACK_TOKEN,
    SLACK_CHANNEL,
    DAGSTER_UI_URL,
    STALE_SENSOR_INTERVAL_SECONDS,
    FIRST_PARTITION_DATE,
    DELIVERY_URL,
    DELIVERY_DIR,
    DELIVERY_SSH_KEY_FILE,
    DELIVERY_KNOWN_HOSTS,
    DELIVERY_S3_KMS_KEY_ID,
    DELIVERY_ALERT_MINUTES,
    INBOUND_URL,
    INBOUND_DIR,
    CONFIRMATION_DEADLINE_HOURS,
    NOTIFICATION_EXPORT_TIME_UTC,
    SEQUENCE_SCOPE,
)

# How often the stale-record and undelivered-files sensors look: 15 minutes unless configured.
SENSOR_INTERVAL_SECONDS = int(STALE_SENSOR_INTERVAL_SECONDS.load_value() or "900")
