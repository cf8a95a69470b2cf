"""The export protocol's steps as kill and fault points, recognised on the wire by the name each command
carries in MongoDB's ``comment`` (esr_export_dagster/storage/protocol.py), not by the shape of its query.

A test that holds a run at a point waits with ``wait_until_reached``: if the run ends without ever sending
a command of that step (the protocol changed), the test fails at once with "kill point X never reached",
instead of after a 120-240 s timeout.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from esr_export_dagster.storage import protocol

from .run_processes import RunProcess
from .wire_proxy import Command, Rule, writes_to


@dataclass(frozen=True)
class ProtocolPoint:
    """Matches the commands of one protocol step: what a fault proxy Rule is given."""

    step: str

    def __call__(self, command: Command) -> bool:
        return command.body.get("comment") == self.step

    def __str__(self) -> str:
        return self.step


selects_records = ProtocolPoint(protocol.SELECT_RECORDS)
opens_batch = ProtocolPoint(protocol.OPEN_BATCH)
numbers_batch = ProtocolPoint(protocol.NUMBER_BATCH)
starts_file = ProtocolPoint(protocol.START_FILE)
claims_records = ProtocolPoint(protocol.CLAIM_RECORDS)
marks_exported = ProtocolPoint(protocol.MARK_RECORDS)
records_marked_in_ledger = ProtocolPoint(protocol.NOTE_FILE_MARKED)
completes_file = ProtocolPoint(protocol.COMPLETE_FILE)
closes_batch = ProtocolPoint(protocol.CLOSE_BATCH)
records_delivery = ProtocolPoint(protocol.RECORD_DELIVERY)

# Not a step: every write to the counters (opening, numbering, closing), for contention tests.
counter_write = writes_to("counter")

Run = RunProcess | subprocess.Popen[str] | Future | Callable[[], str | None]


def point_name(rule: Rule) -> str:
    return str(getattr(rule.matches, "step", None) or getattr(rule.matches, "__name__", "a custom point"))


def _ended(run: Run) -> str | None:
    """How ``run`` ended, or None while it is still going."""
    if isinstance(run, RunProcess | subprocess.Popen):
        if run.poll() is None:
            return None
        _, err = run.communicate()
        return f"the run's process exited with code {run.returncode}: {(err or '')[-2000:]}"
    if isinstance(run, Future):
        if not run.done():
            return None
        failure = run.exception()
        return f"the run raised {failure!r}" if failure else f"the run returned {run.result()!r:.300}"
    return run()


def wait_until_reached(rule: Rule, run: Run, timeout: float = 120) -> None:
    """Until a command of ``rule``'s point reaches the proxy (a held one stays held). ``run`` is the run that
    should send it: a process, a future, or a callable saying how the run ended (None: still going)."""
    deadline = time.monotonic() + timeout
    while not rule.reached.wait(0.2):
        ended = _ended(run)
        if ended is not None and not rule.reached.is_set():
            raise AssertionError(f"kill point {point_name(rule)} never reached: {ended}")
        if time.monotonic() > deadline:
            raise AssertionError(f"kill point {point_name(rule)} not reached within {timeout:.0f} s")


def _updates(command: Command) -> list[tuple[dict, dict]]:
    return [(s.get("q", {}), s.get("u", {})) for s in command.statements()] if command.name == "update" else []


def _slot_fields(fields: dict, name: str) -> list:
    """The values of a deanery's ``openBatch``-field ``name``: at the top of its own counter (deanery scope) or
    under ``deaneries.<DEANERY>.`` of the shared one."""
    return [value for key, value in fields.items() if key == name or key.endswith(f".{name}")]


def of_deanery(command: Command, deanery: str) -> bool:
    """A counter write about ``deanery``'s batch: to its own counter, or to its part of the shared one."""
    if any(str(target).endswith(f"_{deanery}") for target in command.target_ids):
        return True
    return any(key.startswith(f"deaneries.{deanery}.") for q, _ in _updates(command) for key in q)
