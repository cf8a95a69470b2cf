"""The July 2021 incident, replayed for both streams: late placements for 4 August starters (and the
notifications created with them), all deaneries at once at the scheduled tick, and WriteConflicts on the
file-number counter, the one document every deanery takes its numbers from. This time everything goes out,
numbered in one contiguous run continuing the legacy sequence."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import build_schedule_context

from esr_export_dagster.definitions import defs
from esr_export_dagster.domain.deaneries import DEANERIES
from esr_export_dagster.domain.esr_csv import parse_export_file_name
from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.storage.collections import COUNTER

from . import kill_points
from .conftest import each_stream, wait_all
from .invariants import files_on_disk
from .wire_proxy import Rule

# One worker runs both streams' replays, one after the other: each starts 13 run processes at once, and two
# such bursts together on a 2-core machine outlast the runs' timeout.
pytestmark = [pytest.mark.integration, each_stream, pytest.mark.xdist_group("incident_replay")]

STARTERS = dt.date(2021, 8, 4)
ADDED_LATE = dt.datetime(2021, 7, 30, 17, 45)
# The APP export's tick, and the DNC export's an hour later.
TICKS = {
    "APP": dt.datetime(2021, 7, 31, 13, 0, tzinfo=dt.UTC),
    "DNC": dt.datetime(2021, 7, 31, 14, 0, tzinfo=dt.UTC),
}
PER_DEANERY = 4
# The legacy exporter's last numbers before the tick (ESR received DE_EMD_APP_20210727_00003754.DAT next).
LEGACY_LAST = {"APP": 3753, "DNC": 119}


def test_the_incident_tick_exports_every_deanery_through_write_conflicts(harness, fault_proxy):
    stream = harness.stream
    last = LEGACY_LAST[stream.file_type]
    harness.database[COUNTER].insert_one({"_id": harness.counter_id("MER"), "seq": last})
    records = [
        record
        for deanery in DEANERIES
        for record in (
            harness.add(deanery, STARTERS, count=PER_DEANERY, created=ADDED_LATE)
            if stream is APP_STREAM
            else harness.add_notifications(deanery, ADDED_LATE, count=PER_DEANERY)
        )
    ]
    conflicts = fault_proxy.add(Rule(kill_points.counter_write, "write_conflict", times=2, per_shape=True))

    schedule = defs.resolve_schedule_def(f"daily_{stream.name}_export_schedule")
    tick = TICKS[stream.file_type]
    with build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def()) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == len(DEANERIES)
    # All deaneries at once, as the 2021 cron job fired them.
    processes = [
        harness.start_subprocess_run(
            dt.date.fromisoformat(r.partition_key.keys_by_dimension["date"]),
            r.partition_key.keys_by_dimension["deanery"],
            uri=fault_proxy.uri,
        )
        for r in requests
    ]
    summaries = wait_all(processes)

    # Open, number, close: twice each, per deanery, all on the one shared counter document.
    assert conflicts.applied == 2 * 3 * len(DEANERIES)
    assert harness.records.count_documents({"status": EXPORTED}) == len(records)
    files = files_on_disk(harness.export_dir, file_type=stream.file_type)
    assert sorted(parse_export_file_name(name).deanery for name in files) == sorted(DEANERIES)
    numbers = sorted(parse_export_file_name(name).sequence for name in files)
    assert numbers == list(range(last + 1, last + 1 + len(DEANERIES))), "one contiguous run, one number per file"
    assert all(s["exported_by_this_run"] == PER_DEANERY for s in summaries)
    harness.assert_invariants(first_sequence={"MER": last + 1})
