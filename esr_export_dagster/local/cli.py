"""`make run` and `make dev`: the export on one machine, with no set-up by hand.

With ESR_MONGODB_URI unset, both start the embedded MongoDB stand-in (data under .local/), seed demo
records into an empty database, and stop the server again when they finish.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Nothing of Dagster's or of this package's Dagster code is imported at module level: Dagster's beta and
# preview notices are printed while the definitions load, so they must be silenced first (main()), and the
# demo's first partition date must be in the environment before the partitions are defined.
if TYPE_CHECKING:
    from dagster import DagsterInstance, Definitions

    from ..domain.streams import ExportStream

from ..storage.mongo import connect, describe_hosts, require_reachable
from .demo_data import seed_demo_data
from .mongo_server import LocalMongoServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = PROJECT_ROOT / ".local"


# The local demo's grid starts a week back, so a fresh demo is not a grid of years of "Missing" partitions.
DEMO_HISTORY_DAYS = 7
# The check the demo data fails on purpose: one record per deanery whose trainee has already started.
DEMO_FAILED_CHECK = "no_record_past_start"


def main(argv: list[str] | None = None) -> int:
    silence_dagster_notices()
    parser = argparse.ArgumentParser(prog="esr-export-local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="export today's partition of every deanery, then stop")
    run.add_argument("--date", type=dt.date.fromisoformat, help="run date (default: today, UTC)")
    dev = commands.add_parser("dev", help="start the stand-in and `dagster dev` with the schedule running")
    dev.add_argument("--port", type=int, default=3000, help="the Dagster UI's port (default 3000)")
    arguments = parser.parse_args(argv)
    today = dt.datetime.now(dt.UTC).date()
    run_date = getattr(arguments, "date", None) or today
    os.environ.setdefault(
        "ESR_FIRST_PARTITION_DATE", (min(run_date, today) - dt.timedelta(days=DEMO_HISTORY_DAYS)).isoformat()
    )
    if arguments.command == "run":
        return run_export(run_date)
    return run_dev(arguments.port)


def silence_dagster_notices() -> None:
    """backfill_policy and partitioned asset checks are marked beta/preview by Dagster: nothing to act on here."""
    from dagster import BetaWarning, PreviewWarning

    for category in (BetaWarning, PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


@contextlib.contextmanager
def local_environment() -> Iterator[None]:
    """Defaults for every setting not given, and the stand-in when no MongoDB is configured."""
    os.environ.setdefault("ESR_MONGODB_DATABASE", "esr_export")
    os.environ.setdefault("ESR_EXPORT_DIR", str(LOCAL_DIR / "export"))
    # No ESR_DELIVERY_URL: files are delivered into a local folder standing in for ESR's drop.
    os.environ.setdefault("ESR_DELIVERY_DIR", str(LOCAL_DIR / "esr-drop"))
    dagster_home = Path(os.environ.setdefault("DAGSTER_HOME", str(LOCAL_DIR / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    if os.environ.get("ESR_MONGODB_URI"):
        yield
        return
    with LocalMongoServer(LOCAL_DIR / "mongodb") as server:
        os.environ["ESR_MONGODB_URI"] = server.uri
        print(f"Started the embedded MongoDB stand-in on 127.0.0.1:{server.port} (data in {server.data_dir})")
        try:
            yield
        finally:
            del os.environ["ESR_MONGODB_URI"]
            print("Stopped the embedded MongoDB stand-in")


def _seed_if_empty(run_date: dt.date) -> None:
    uri = os.environ["ESR_MONGODB_URI"]
    with connect(uri, 5000) as client:
        database = client[os.environ["ESR_MONGODB_DATABASE"]]
        require_reachable(database, uri)
        inserted = seed_demo_data(database, run_date)
    for collection, count in inserted.items():
        print(f"Seeded {count} demo {collection} documents into {describe_hosts(uri)}")


def run_export(run_date: dt.date) -> int:
    # Loaded here, once main() has silenced Dagster's notices and set the demo's first partition date.
    from dagster import DagsterInstance

    from ..domain.streams import STREAMS

    with local_environment():
        # The code location reads the local defaults (the drop folder among them) from the environment.
        from ..definitions import defs

        _seed_if_empty(run_date)
        instance = DagsterInstance.get()
        failures = sum(_run_stream(defs, instance, stream, run_date) for stream in STREAMS)
        return 1 if failures else 0


def _run_stream(defs: Definitions, instance: DagsterInstance, stream: ExportStream, run_date: dt.date) -> int:
    """Every deanery's partition of one stream's job, as the schedule launches them; returns the failures."""
    from ..delivery_ops import run_summary_of
    from ..domain.deaneries import DEANERIES
    from ..partitions import DEANERY_TAG, export_partition_key

    job = defs.resolve_job_def(stream.job_name)
    failures = 0
    demo_check_failed = False
    export_dir = Path(os.environ["ESR_EXPORT_DIR"])
    print(f"\nESR {stream.file_type} export for {run_date.isoformat()} (files in {export_dir})")
    for deanery in DEANERIES:
        result = job.execute_in_process(
            partition_key=export_partition_key(run_date, deanery),
            instance=instance,
            tags={DEANERY_TAG: deanery},
            # The summary line below says what the warnings would; errors still show.
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            raise_on_error=False,
        )
        if not result.success:
            failures += 1
            print(f"  {deanery}: FAILED (run {result.run_id}; open it in `make dev` for the error)")
            continue
        (summary,) = run_summary_of(result, stream).values()
        failed_checks = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        demo_check_failed |= DEMO_FAILED_CHECK in failed_checks
        unexpected = [name for name in failed_checks if name != DEMO_FAILED_CHECK]
        print(f"  {deanery}: {partition_line(summary)}")
        for line in _delivery_lines(summary):
            print(line)
        if unexpected:
            print(f"       checks failed: {', '.join(unexpected)} (open the run in `make dev`: Checks tab)")
    if demo_check_failed:
        print(
            f"  (check {DEMO_FAILED_CHECK} fails on purpose: the demo data holds, per deanery, one record never "
            "exported whose trainee has already started, which the check and the stale-record sensor exist to catch)"
        )
    return failures


def partition_line(summary: Mapping[str, Any]) -> str:
    """One partition's outcome in words that cannot be misread: files written, or nothing new and why."""
    written = summary["files_written_by_this_run"]
    files = summary["files_for_partition"]
    extras = []
    if summary["invalid_marked_this_run"]:
        extras.append(f"{summary['invalid_marked_this_run']} set to INVALID_DATA")
    if summary.get("withheld_past_start"):
        extras.append(f"{summary['withheld_past_start']} withheld (trainee already started)")
    tail = f" ({', '.join(extras)})" if extras else ""
    if written:
        return f"{summary['exported_by_this_run']} exported{tail}, wrote {', '.join(written)}"
    if files:
        held = sum(f["lines"] or 0 for f in files)
        return f"nothing new{tail}: already exported ({held} in {', '.join(f['name'] for f in files)})"
    return f"nothing eligible{tail}: no file written"


def _delivery_lines(summary: dict) -> list[str]:
    """What this run put into ESR's drop for the partition, and what is still waiting to go."""
    lines = [
        f"       delivered to {d['destination']}: {d['location']} (SHA-256 {d['sha256'][:12]}...)"
        for d in summary.get("delivered_by_this_run", [])
    ]
    if summary.get("undelivered_files"):
        lines.append(f"       NOT delivered yet: {', '.join(summary['undelivered_files'])}")
    return lines


def run_dev(port: int) -> int:
    with local_environment():
        _seed_if_empty(dt.datetime.now(dt.UTC).date())
        beside_python = Path(sys.executable).with_name("dagster")
        dagster = str(beside_python) if beside_python.exists() else "dagster"
        # Its own process group, so that shutting it down reaches the webserver, daemon and code server it
        # starts: dagster dev does not always pass a signal on to them.
        process = subprocess.Popen(
            [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-p", str(port)],
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            return process.wait()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> int:
    for signum, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=grace)
            # The leader may go first: give the rest of its group the same signal's chance, then make sure.
            time.sleep(1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return 0
        except subprocess.TimeoutExpired:
            continue
    return 1


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
