"""The code location the production-daemon tests load through a workspace file.

The project's own definitions (assets, checks, both jobs, resources read from ESR_* variables), with
the real APP schedule's run requests on a daily cron whose one tick a day falls a minute or so after the
test starts the daemon (ESR_TEST_SCHEDULE_CRON, set by the test), so the daemon's scheduler ticks within
the test exactly once, as the production schedule does each day: a daemon restarted later in the test
must not tick again. Both daily schedules (daily_app_export_schedule, daily_notification_export_schedule)
and both sensors (stale_to_export_sensor, export_run_failure_alert) are left out: nothing else may launch
runs.
"""

import os

from dagster import Definitions, definitions, in_process_executor

from esr_export_dagster.definitions import build_definitions, default_resources
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.schedules import build_daily_export_schedule

TEST_SCHEDULE_NAME = "daemon_test_app_export_schedule"
TEST_SCHEDULE_CRON_VARIABLE = "ESR_TEST_SCHEDULE_CRON"


# Lazy: the tests import this module's names; only the daemon's code server has the variable.
@definitions
def daemon_test_location() -> Definitions:
    cron = os.environ.get(TEST_SCHEDULE_CRON_VARIABLE)
    if not cron:
        raise RuntimeError(f"{TEST_SCHEDULE_CRON_VARIABLE} is not set: this location is loaded by the daemon tests")
    project = build_definitions(default_resources())
    return Definitions(
        assets=project.assets,
        asset_checks=project.asset_checks,
        jobs=project.jobs,
        schedules=[
            build_daily_export_schedule(
                APP_STREAM.job_name, APP_STREAM, cron, "Once, during the test", name=TEST_SCHEDULE_NAME
            )
        ],
        resources=project.resources,
        # One process per run instead of one per step: on the 2-core CI machines the multiprocess
        # executor's ~8 step processes per run made the 13 runs take over 5 minutes. The daemon, the run
        # queue, the code server and a process per run worker stay as in production.
        executor=in_process_executor,
        loggers=project.loggers,
    )
