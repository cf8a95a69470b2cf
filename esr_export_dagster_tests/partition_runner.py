"""Runs one partition of the export job in its own process (as a run worker does), for fault tests.

Usage: python -m esr_export_dagster_tests.partition_runner YYYY-MM-DD DEANERY [app|notification]
Configuration comes from ESR_MONGODB_URI, ESR_MONGODB_DATABASE and ESR_EXPORT_DIR, like production; the
wall clock reads the run date's scheduled time, as the schedule's run of that day would have.
Prints the partition's summary as JSON on its last line.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from dagster import DagsterInstance

from esr_export_dagster.definitions import build_definitions, default_resources
from esr_export_dagster.delivery_ops import run_summary_of
from esr_export_dagster.domain.streams import STREAMS
from esr_export_dagster.partitions import DEANERY_TAG, export_partition_key
from esr_export_dagster.resources import FixedClockResource


def main(run_date: str, deanery: str, stream: str = "app") -> int:
    clock = FixedClockResource.scheduled_on(dt.date.fromisoformat(run_date))
    defs = build_definitions({**default_resources(), "wall_clock": clock})
    job = defs.resolve_job_def(f"daily_{stream}_export_job")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            partition_key=export_partition_key(dt.date.fromisoformat(run_date), deanery),
            instance=instance,
            tags={DEANERY_TAG: deanery},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        if not result.success:
            return 1
        (export_stream,) = [s for s in STREAMS if s.name == stream]
        (summary,) = run_summary_of(result, export_stream).values()
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
