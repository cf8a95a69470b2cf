"""The kill points the fault tests stop runs at are the steps the export names on the wire, and a point a
run never reaches fails the test at once, by name."""

from __future__ import annotations

import datetime as dt

import pytest

from esr_export_dagster.storage import protocol

from . import kill_points
from .kill_points import ProtocolPoint
from .wire_proxy import Rule

pytestmark = pytest.mark.integration

RUN_DATE = dt.date(2021, 7, 31)


def test_one_run_names_every_protocol_step_on_the_wire_in_protocol_order(harness, fault_proxy):
    harness.add_due("EOE", RUN_DATE, count=2)

    harness.run_ok(RUN_DATE, "EOE", uri=fault_proxy.uri)

    first_seen = list(dict.fromkeys(fault_proxy.steps_seen))
    assert first_seen == list(protocol.PROTOCOL_STEPS)


def test_every_kill_point_is_a_protocol_step():
    points = [value for value in vars(kill_points).values() if isinstance(value, ProtocolPoint)]

    assert sorted(point.step for point in points) == sorted(protocol.PROTOCOL_STEPS)


def test_a_kill_point_the_run_never_reaches_fails_at_once_naming_it(harness, fault_proxy):
    harness.add_due("EOE", RUN_DATE)
    held = fault_proxy.add(Rule(ProtocolPoint("esr-export:a-step-the-protocol-lost"), "hold"))
    run = harness.start_subprocess_run(RUN_DATE, "EOE", uri=fault_proxy.uri)

    # "never reached" is said when the run ends; the timeout would say "not reached within 600 s".
    with pytest.raises(AssertionError, match="kill point esr-export:a-step-the-protocol-lost never reached"):
        kill_points.wait_until_reached(held, run, timeout=600)

    assert run.returncode == 0
