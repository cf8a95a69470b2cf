"""Resources: where the records live, where the files go, and the export's business policy."""

import datetime as dt
from dataclasses import replace

from dagster import ConfigurableResource, Failure, InitResourceContext
from pydantic import Field, PrivateAttr
from pymongo import MongoClient
from pymongo.database import Database

from .domain.file_plan import ESR_MAX_APPLICANTS_PER_POST
from .domain.sequence import SEQUENCE_SCOPES, SHARED_SCOPE, checked_scope
from .domain.stale_records import StalePolicy
from .domain.streams import APP_STREAM, NOTIFICATION_STREAM, ExportStream
from .domain.window import DAILY_RUN_TIME_UTC, NOTIFICATION_RUN_TIME_UTC, CreatedBeforeExportTime, EligibilityWindow
from .storage.export_dir import ExportDirectory
from .storage.exporter import Exporter, ExportSettings
from .storage.mongo import connect, require_reachable


class MongoDBResource(ConfigurableResource):
    """The MongoDB holding GeneratedAppRecords, notification records, the sequence counters and the export ledger."""

    uri: str = Field(description="MongoDB connection string (ESR_MONGODB_URI). Never logged.")
    database: str = Field(default="esr_export", description="Database name (ESR_MONGODB_DATABASE).")
    server_selection_timeout_ms: int = Field(
        default=5000, description="How long to wait for a reachable server before failing the step."
    )

    _client: MongoClient | None = PrivateAttr(default=None)

    def get_database(self) -> Database:
        """The database; connects on first use, never at import, and proves then that the server answers.

        Only the first use in a run pings: a server lost later fails the step on its next command anyway, and
        a ping per step cost a round trip to every one of a run's eight steps.
        """
        if self._client is None:
            client = connect(self.uri, self.server_selection_timeout_ms)
            try:
                require_reachable(client[self.database], self.uri)
            except BaseException:
                client.close()
                raise
            self._client = client
        return self._client[self.database]

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class ExportDirectoryResource(ConfigurableResource):
    """The directory ESR's transfer picks the DAT files up from (ESR_EXPORT_DIR). Files hold personal data."""

    path: str = Field(description="Directory for the export files; created 0700 if missing.")

    def directory(self) -> ExportDirectory:
        return ExportDirectory(self.path)


class ExportPolicyResource(ConfigurableResource):
    """ESR's rules for what goes into a day's files: the APP window and per-post limit, the DNC cut-off, and
    how far one sequence of file numbers reaches."""

    earliest_start_offset_days: int = Field(
        default=2, description="A record is eligible on day D if it starts on or after D + this many days."
    )
    latest_start_offset_weeks: int = Field(default=13, description="... and before D + this many weeks.")
    max_records_per_post: int = Field(
        default=ESR_MAX_APPLICANTS_PER_POST,
        description="ESR quarantines a file holding more applicants than this for one post.",
    )

    notification_export_time_utc: str = Field(
        default=NOTIFICATION_RUN_TIME_UTC.strftime("%H:%M"),
        description="A notification goes in day D's DNC file if created before D at this time (HH:MM, UTC).",
    )

    sequence_scope: str = Field(
        default=SHARED_SCOPE,
        description=(
            f"ESR_SEQUENCE_SCOPE, one of {', '.join(SEQUENCE_SCOPES)}. shared: one sequence per file type across all "
            "deaneries, as ESR has always received them. deanery: one sequence per deanery and file type."
        ),
    )

    def scope(self) -> str:
        """The configured sequence scope; a value that is neither fails the run naming the variable, at once
        (a retry would read the same setting)."""
        try:
            return checked_scope(self.sequence_scope)
        except ValueError as error:
            raise Failure(description=str(error), allow_retries=False) from None

    def window(self) -> EligibilityWindow:
        return EligibilityWindow(self.earliest_start_offset_days, self.latest_start_offset_weeks)

    def notification_cutoff(self) -> CreatedBeforeExportTime:
        return CreatedBeforeExportTime(dt.time.fromisoformat(self.notification_export_time_utc))

    def settings(self, stream: ExportStream = APP_STREAM) -> ExportSettings:
        eligibility = {
            APP_STREAM.file_type: self.window,
            NOTIFICATION_STREAM.file_type: self.notification_cutoff,
        }[stream.file_type]()
        return ExportSettings(
            eligibility=eligibility,
            max_records_per_post=self.max_records_per_post if stream.limits_records_per_post else None,
            sequence_scope=self.scope(),
        )


class WallClockResource(ConfigurableResource):
    """The wall clock, in UTC, by which a run judges that a trainee has already started.

    Eligibility is judged against the partition's date; only the "already started" rule is judged against
    the real day, because the trust acts on the real day. Tests replaying past days give a fixed clock.
    """

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.now().astimezone(dt.UTC).date()


class FixedClockResource(WallClockResource):
    """A clock stopped at one instant, for replaying past days (tests, benchmarks); never in the code location."""

    at: str = Field(description="ISO 8601 instant with its UTC offset, e.g. 2021-07-31T13:00:00+00:00.")

    def now(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)

    @classmethod
    def scheduled_on(cls, run_date: dt.date) -> "FixedClockResource":
        """The clock as the daily schedule's run of ``run_date`` would read it."""
        return cls(at=dt.datetime.combine(run_date, DAILY_RUN_TIME_UTC, tzinfo=dt.UTC).isoformat())


class ExporterResource(ConfigurableResource):
    """The export's steps (``storage/exporter.py``) over the records' MongoDB, the export directory and ESR's rules.

    Every asset, op and check that exports or selects asks this one resource for the stream's exporter, so
    the three settings it nests are configured once.
    """

    mongodb: MongoDBResource
    export_directory: ExportDirectoryResource
    export_policy: ExportPolicyResource

    def for_stream(self, stream: ExportStream, withhold_started_by: dt.date | None = None) -> Exporter:
        """The stream's exporter; ``withhold_started_by`` keeps records starting on or before it out of the files."""
        return Exporter(
            database=self.mongodb.get_database(),
            directory=self.export_directory.directory(),
            settings=replace(self.export_policy.settings(stream), withhold_started_by=withhold_started_by),
            stream=stream,
        )


class StaleRecordPolicyResource(ConfigurableResource):
    """When a TO_EXPORT record counts as stuck, and what the stale-record sensor may do about it."""

    scheduled_time_utc: str = Field(
        default=DAILY_RUN_TIME_UTC.strftime("%H:%M"), description="When the daily APP export runs (HH:MM, UTC)."
    )
    grace_minutes: int = Field(
        default=60,
        description=(
            "After the scheduled time plus this, records due today count as overdue; a notification counts as "
            "late no sooner than this after the DNC export that should have carried it."
        ),
    )
    catch_up_runs: bool = Field(
        default=True, description="Request runs for partitions that would still export overdue or at-risk records."
    )
    ui_url: str = Field(
        default="http://127.0.0.1:3000",
        description="The Dagster UI's address, for links in alerts (ESR_DAGSTER_UI_URL).",
    )

    def policy(self, export_policy: ExportPolicyResource) -> StalePolicy:
        return StalePolicy(
            window=export_policy.window(),
            scheduled_time_utc=dt.time.fromisoformat(self.scheduled_time_utc),
            grace=dt.timedelta(minutes=self.grace_minutes),
            notification_cutoff=export_policy.notification_cutoff(),
        )
