"""`make test`'s parallel layout, as a pytest collection hook that conftest.py takes up.

It imports nothing but pytest, so that test_xdist_groups.py can run this very hook in a pytest of its own
without importing Dagster and the project in every one of its workers.
"""

from __future__ import annotations

import pytest

# The daemon scenarios each start a daemon, a code server and 13 run workers of about 8 s of CPU each. With
# parallel workers (`make test`) they run in lanes: each lane is an xdist group that one worker runs in order,
# so at most DAEMON_SCENARIO_LANES of them share the 2 cores while the other workers run the short tests.
# Three at once took about 300-320 s a scenario here, and one CI run left a run STARTING past the 360 s
# patience; in two lanes they took 148-247 s each, and the whole of pytest 16.5 minutes instead of 19 to 21.
DAEMON_SCENARIO_MODULE = "test_production_daemon.py"
DAEMON_SCENARIO_LANES = 2
# The slowest modules of the rest, in that order, so that none of them is left to finish the suite alone.
SLOW_MODULES_FIRST = ("test_local_demo.py", "test_backfill.py", "test_hostile_property.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups from the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    scenarios = [item for item in items if item.path.name == DAEMON_SCENARIO_MODULE]
    for index, item in enumerate(scenarios):
        item.add_marker(pytest.mark.xdist_group(f"production_daemon_lane_{index % DAEMON_SCENARIO_LANES}"))
    # A stable sort by module moves whole modules only: the browser tests, which share one module-scoped
    # `dagster dev` stack, stay together.
    items.sort(
        key=lambda item: (
            SLOW_MODULES_FIRST.index(item.path.name)
            if item.path.name in SLOW_MODULES_FIRST
            else len(SLOW_MODULES_FIRST)
        )
    )
