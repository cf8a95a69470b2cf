"""The code location the production-daemon tests load through a workspace file.

The project's own definitions (assets, checks, jobs, resources read from ESR_* variables, its in-process
executor), with
the real APP schedule's run requests on a daily cron whose one tick a day falls 20-80 s after the code
location first loads, so the daemon's scheduler ticks within the test exactly once, as the production
schedule does each day: a daemon restarted later in the test must not tick again. The first load (the
daemon's code server) fixes that minute in the file ESR_TEST_SCHEDULE_CRON_FILE names; every later load
(run workers, a restarted daemon) reads it back. Computed at load rather than when the test starts the
daemon, the tick cannot fall before the scheduler has seen the schedule however long a loaded machine takes
to start the daemon and its code server. Both daily schedules (daily_app_export_schedule,
daily_notification_export_schedule) and every sensor are left out: nothing else may launch runs.
"""

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path

from dagster import Definitions, definitions

from esr_export_dagster.definitions import build_definitions, default_resources
from esr_export_dagster.domain.streams import APP_STREAM
from esr_export_dagster.schedules import build_daily_export_schedule, daily_cron

TEST_SCHEDULE_NAME = "daemon_test_app_export_schedule"
TEST_SCHEDULE_CRON_FILE_VARIABLE = "ESR_TEST_SCHEDULE_CRON_FILE"
# From the code location's first load to the scheduler's first look at it: the daemon starts its daemons
# once the code server has loaded, then the scheduler looks at once and again at every whole minute.
FIRST_TICK_MARGIN = dt.timedelta(seconds=20)


def first_tick_after(now: dt.datetime) -> dt.datetime:
    """The first whole minute at least FIRST_TICK_MARGIN after ``now``."""
    earliest = now + FIRST_TICK_MARGIN
    whole = earliest.replace(second=0, microsecond=0)
    return whole if whole == earliest else whole + dt.timedelta(minutes=1)


def fixed_schedule_cron(path: Path) -> str:
    """The cron fixed in ``path`` by the first load; the first load writes it (atomically: the code server
    and a run worker may load at once)."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="utf-8")
    cron = daily_cron(first_tick_after(dt.datetime.now(dt.UTC)).time())
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as draft:
        draft.write(cron)
    try:
        os.link(draft.name, path)
    except FileExistsError:
        return path.read_text(encoding="utf-8")
    finally:
        os.unlink(draft.name)
    return cron


# Lazy: the tests import this module's names; only the daemon's code server has the variable.
@definitions
def daemon_test_location() -> Definitions:
    cron_file = os.environ.get(TEST_SCHEDULE_CRON_FILE_VARIABLE)
    if not cron_file:
        raise RuntimeError(
            f"{TEST_SCHEDULE_CRON_FILE_VARIABLE} is not set: this location is loaded by the daemon tests"
        )
    cron = fixed_schedule_cron(Path(cron_file))
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
        executor=project.executor,
        loggers=project.loggers,
    )
