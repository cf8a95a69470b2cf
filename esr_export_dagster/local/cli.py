"""`make run` and `make dev`: the export on one machine, with no set-up by hand; and `cut-over`, which sets
the sequence counters of a production MongoDB so that the next file continues the numbers ESR knows.

With ESR_MONGODB_URI unset, `run` and `dev` start the embedded MongoDB stand-in (data under .local/), seed
demo records into an empty database, and stop the server again when they finish.
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
import threading
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
# The folders `run` and `dev` keep under LOCAL_DIR unless the variable is set (a test sets every one).
LOCAL_FOLDERS = {
    "ESR_EXPORT_DIR": "export",
    # No ESR_DELIVERY_URL: files are delivered into a local folder standing in for ESR's drop.
    "ESR_DELIVERY_DIR": "esr-drop",
    # No ESR_INBOUND_URL: ESR's stand-in answers into this folder, where the confirmation sensor reads.
    "ESR_INBOUND_DIR": "esr-drop/inbound",
    "DAGSTER_HOME": "dagster_home",
}


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
    cut = commands.add_parser(
        "cut-over",
        help="set the counters at ESR_MONGODB_URI so the next file continues ESR's sequence (never backwards)",
        description=(
            "Set the sequence counters so that the next file of each type continues the sequence ESR knows. "
            "Scope from ESR_SEQUENCE_SCOPE (default shared): shared takes one last number per file type "
            "(--app 3766), deanery one per deanery (--app EMD=3754 --app WMD=3757). Refuses to move a counter "
            "backwards and refuses while a batch is open; then nothing is changed."
        ),
    )
    for file_type in ("APP", "DNC"):
        cut.add_argument(
            f"--{file_type.lower()}",
            action="append",
            default=[],
            metavar="N or DEANERY=N",
            help=f"the last {file_type} file number ESR received",
        )
    arguments = parser.parse_args(argv)
    if arguments.command == "cut-over":
        return run_cut_over({"APP": arguments.app, "DNC": arguments.dnc})
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
    for variable, folder in LOCAL_FOLDERS.items():
        os.environ.setdefault(variable, str(LOCAL_DIR / folder))
    dagster_home = Path(os.environ["DAGSTER_HOME"])
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
        failures += _esr_answers(defs, instance)
        return 1 if failures else 0


def _esr_answers(defs: Definitions, instance: DagsterInstance) -> int:
    """ESR's stand-in answers what was delivered; the confirmation sensor and runs read the answers, as the
    daemon would; one line per deanery says what ESR did. Returns the failed runs."""
    from dagster import build_sensor_context

    from ..confirmation_sensor import esr_confirmation_sensor
    from .esr_standin import answer_folder

    inbound = Path(os.environ["ESR_INBOUND_DIR"])
    written = answer_folder(Path(os.environ["ESR_DELIVERY_DIR"]), inbound)
    print(f"\nESR's answers (the local ESR stand-in answered {len(written)} delivered file(s) into {inbound})")
    with build_sensor_context(
        instance=instance, resources=defs.resources, repository_def=defs.get_repository_def()
    ) as context:
        tick = esr_confirmation_sensor(context)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    failures = 0
    for request in tick.run_requests or []:
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            instance=instance,
            tags=request.tags,
            raise_on_error=False,
        )
        if not result.success:
            failures += 1
            print(f"  {request.tags.get('esr/confirmation-file')}: FAILED (run {result.run_id})")
            continue
        for event in result.get_asset_materialization_events():
            metadata = {key: value.value for key, value in event.materialization.metadata.items()}
            total = totals.setdefault(
                (str(metadata["deanery"]), event.asset_key.to_user_string()),
                {"loaded": 0, "warnings": 0, "failed": 0, "rejected": [], "unmatched": 0},
            )
            for count in ("loaded", "warnings", "failed", "unmatched"):
                total[count] += int(metadata[count])
            rejected = next((str(v) for k, v in metadata.items() if k.startswith("rejected_")), "none")
            total["rejected"].extend([] if rejected == "none" else rejected.split(", "))
    if not totals:
        print("  no new confirmation from ESR")
    heading = None
    for (deanery, asset), total in sorted(totals.items(), key=lambda item: (item[0][1], item[0][0])):
        if asset != heading:
            heading = asset
            print(f"  {asset}:")
        print(f"  {deanery}: {confirmation_line(asset, total)}")
    return failures


def confirmation_line(asset: str, total: Mapping[str, Any]) -> str:
    """What ESR did with a deanery's records, e.g. "ESR loaded 11, rejected 1 (placement 1234567)"."""
    noun = "placement" if asset.startswith("app") else "notification"
    loaded = total["loaded"] + total["warnings"]
    line = f"ESR loaded {loaded}"
    if total["warnings"]:
        line += f" ({total['warnings']} with warnings)"
    line += f", rejected {total['failed']}"
    if total["rejected"]:
        line += f" ({noun} {', '.join(total['rejected'])})"
    if total["unmatched"]:
        line += f", {total['unmatched']} line(s) unmatched"
    return line


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


def run_cut_over(values: Mapping[str, list[str]]) -> int:
    """The cut-over against the configured MongoDB (never the stand-in: its counters are nobody's)."""
    from ..domain.sequence import SEQUENCE_SCOPE_VARIABLE, SHARED_SCOPE, checked_scope
    from ..storage.cut_over import cut_over
    from ..storage.errors import ExportStateError

    uri = os.environ.get("ESR_MONGODB_URI")
    try:
        if not uri:
            raise ValueError("ESR_MONGODB_URI is not set: the cut-over sets the counters of the production MongoDB")
        scope = checked_scope(os.environ.get(SEQUENCE_SCOPE_VARIABLE) or SHARED_SCOPE)
        requested = {
            file_type: parse_last_numbers(file_type, given, scope) for file_type, given in values.items() if given
        }
        if not requested:
            raise ValueError("Give the last number ESR received: --app and/or --dnc")
        with connect(uri, 5000) as client:
            database = client[os.environ.get("ESR_MONGODB_DATABASE") or "esr_export"]
            require_reachable(database, uri)
            print(
                f"Cut-over in {scope} scope ({SEQUENCE_SCOPE_VARIABLE}) on {describe_hosts(uri)}, database {database.name}:"
            )
            for file_type, last_numbers in requested.items():
                for line in cut_over(database, scope, file_type, last_numbers):
                    print(f"  {line}")
    except (ValueError, ExportStateError) as error:
        print(f"cut-over refused: {error}", file=sys.stderr)
        return 1
    return 0


def parse_last_numbers(file_type: str, given: list[str], scope: str) -> dict[str | None, int]:
    """``["3766"]`` (shared scope) or ``["EMD=3754", "WMD=3757"]`` (deanery scope), checked."""
    from ..domain.deaneries import require_deanery
    from ..domain.sequence import SHARED_SCOPE

    option = f"--{file_type.lower()}"
    if scope == SHARED_SCOPE:
        if len(given) != 1 or "=" in given[0]:
            raise ValueError(
                f"{option}: shared scope takes one last number for all deaneries ({option} 3766); for numbers per "
                "deanery set ESR_SEQUENCE_SCOPE=deanery"
            )
        return {None: _whole_number(option, given[0])}
    numbers: dict[str | None, int] = {}
    for item in given:
        deanery, separator, number = item.partition("=")
        if not separator:
            raise ValueError(f"{option}: deanery scope takes DEANERY=N per deanery ({option} EMD=3754), not {item!r}")
        if require_deanery(deanery) in numbers:
            raise ValueError(f"{option}: {deanery} is given twice")
        numbers[deanery] = _whole_number(f"{option} {deanery}", number)
    return numbers


def _whole_number(what: str, text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what}: {text!r} is not a whole number")
    return int(text)


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
        # ESR's stand-in answers what the schedule and the UI's runs deliver, so the UI shows the round trip.
        stop_answering = threading.Event()
        threading.Thread(
            target=answer_until,
            args=(stop_answering, Path(os.environ["ESR_DELIVERY_DIR"]), Path(os.environ["ESR_INBOUND_DIR"])),
            daemon=True,
        ).start()
        try:
            return process.wait()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return stop_process_group(process)


STANDIN_INTERVAL_SECONDS = 30


def answer_until(stop: threading.Event, drop: Path, inbound: Path, interval: float = STANDIN_INTERVAL_SECONDS) -> None:
    """ESR's stand-in for `make dev`: answer newly delivered files every ``interval`` seconds until ``stop``."""
    from .esr_standin import answer_folder

    while True:
        try:
            answer_folder(drop, inbound)
        except (OSError, ValueError) as error:  # a file being written, a stray name: the next round tries again
            print(f"ESR stand-in: {error.__class__.__name__}; trying again in {interval:g} s")
        if stop.wait(interval):
            return


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
