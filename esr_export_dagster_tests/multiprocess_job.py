"""The APP export job as a run worker would load it if a deployment chose Dagster's multiprocess executor,
each step in its own process (the project's own is in-process: definitions.py).

Configuration comes from the ESR_* variables, like production; the wall clock reads the scheduled time of
ESR_TEST_RUN_DATE, as the schedule's run of that day would have.
"""

from __future__ import annotations

import datetime as dt
import os

from dagster import Definitions, JobDefinition, multiprocess_executor

from esr_export_dagster.definitions import build_definitions, default_resources
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.resources import FixedClockResource

RUN_DATE_VARIABLE = "ESR_TEST_RUN_DATE"


def daily_app_export_job() -> JobDefinition:
    clock = FixedClockResource.scheduled_on(dt.date.fromisoformat(os.environ[RUN_DATE_VARIABLE]))
    project = build_definitions({**default_resources(), "wall_clock": clock})
    return Definitions(
        assets=project.assets,
        asset_checks=project.asset_checks,
        jobs=project.jobs,
        resources=project.resources,
        executor=multiprocess_executor,
    ).resolve_job_def(APP_STREAM.job_name)
