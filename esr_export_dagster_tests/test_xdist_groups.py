"""The suite's parallel layout holds: `make test`'s workers keep each lane of daemon scenarios together.

pytest-xdist drops xdist_group marks without a word when a pytest release changes how node ids are kept (it did
with pytest 9.2), so this runs the suite's own collection hook under the pinned pytest and pytest-xdist on a
few stand-in tests and reads which worker ran each. The hook lives in layout.py, which imports only pytest,
so that pytest's workers here need not import Dagster and the project.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from . import conftest
from .conftest import PROJECT_ROOT
from .layout import DAEMON_SCENARIO_LANES, DAEMON_SCENARIO_MODULE, pytest_collection_modifyitems

SCENARIOS = 2 * DAEMON_SCENARIO_LANES

RECORDING_TESTS = """
import json, os

def record(name):
    with open(os.environ["WORKERS_LOG"], "a") as log:
        log.write(json.dumps([name, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")
"""


def test_the_suite_lays_itself_out_with_the_layout_modules_hook():
    assert conftest.pytest_collection_modifyitems is pytest_collection_modifyitems


def test_each_lane_of_daemon_scenarios_runs_on_one_worker_and_the_lanes_on_different_workers(tmp_path: Path):
    (tmp_path / "conftest.py").write_text(
        "from esr_export_dagster_tests.layout import pytest_collection_modifyitems  # noqa: F401\n",
        encoding="utf-8",
    )
    (tmp_path / "recording.py").write_text(RECORDING_TESTS, encoding="utf-8")
    scenarios = "".join(f"def test_scenario_{n}():\n    record('scenario_{n}')\n\n" for n in range(SCENARIOS))
    (tmp_path / DAEMON_SCENARIO_MODULE).write_text(f"from recording import record\n\n{scenarios}", encoding="utf-8")
    short = "".join(f"def test_short_{n}():\n    record('short_{n}')\n\n" for n in range(6))
    (tmp_path / "test_short.py").write_text(f"from recording import record\n\n{short}", encoding="utf-8")
    log = tmp_path / "workers.jsonl"

    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3", "--dist", "loadgroup"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{PROJECT_ROOT}:{tmp_path}", "WORKERS_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    worker_of = dict(json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())
    assert len(worker_of) == SCENARIOS + 6
    lanes: dict[int, set[str]] = defaultdict(set)
    for n in range(SCENARIOS):
        lanes[n % DAEMON_SCENARIO_LANES].add(worker_of[f"scenario_{n}"])
    assert all(len(workers) == 1 for workers in lanes.values()), dict(lanes)
    assert len(set().union(*lanes.values())) == DAEMON_SCENARIO_LANES, dict(lanes)
