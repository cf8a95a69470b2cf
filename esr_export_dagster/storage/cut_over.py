"""Cut-over: set the counters so that the next file continues the sequence ESR already knows.

Used once, when this project takes over from the legacy exporter (whose last numbers ESR has), or when a
site changes its sequence scope. A counter is only ever moved forward: a number ESR has received must never
be issued again. Nothing is changed while any batch is open (its numbers are taken or about to be), and
every requested value is checked before the first counter moves, so a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..domain.sequence import DEANERY_SCOPE, SHARED_SCOPE, checked_scope, counter_value_problem, sequence_counter_id
from .collections import COUNTER
from .errors import ExportStateError, shown
from .ledger import ExportLedger


class CutOverRefusedError(ExportStateError):
    """The cut-over would move a counter backwards, or a batch is open: nothing was changed."""


@dataclass(frozen=True)
class CounterMove:
    counter_id: str
    # None: the counter did not exist.
    previous: int | None
    seq: int

    def describe(self, file_type: str) -> str:
        before = "absent" if self.previous is None else str(self.previous)
        if self.previous == self.seq:
            return f"counter {self.counter_id}: already {self.seq}, unchanged (next {file_type} file: {self.seq + 1})"
        return f"counter {self.counter_id}: {before} -> {self.seq} (next {file_type} file: {self.seq + 1})"


def cut_over(database: Database, scope: str, file_type: str, last_numbers: Mapping[str | None, int]) -> list[str]:
    """Set ``file_type``'s counters of ``scope`` to the last numbers ESR received; returns what was done.

    ``last_numbers`` is ``{None: n}`` in shared scope and ``{deanery: n, ...}`` in deanery scope. A counter that
    exists is never moved backwards, and a missing one is never set below the highest number the file ledger
    holds for it. Moving to deanery scope retires the shared counter (the file ledger keeps its history).
    """
    checked_scope(scope)
    ledger = ExportLedger(database, file_type, scope)
    counters = database[COUNTER]
    _refuse_open_batches(database, file_type)
    moves = []
    for deanery, requested in sorted(last_numbers.items(), key=lambda item: item[0] or ""):
        if scope == SHARED_SCOPE and deanery is not None or scope == DEANERY_SCOPE and deanery is None:
            raise CutOverRefusedError(
                f"{file_type} {'takes one last number' if scope == SHARED_SCOPE else 'takes one last number per deanery'}"
                f" in {scope} scope. Nothing was changed."
            )
        counter_id = sequence_counter_id(file_type, deanery or "", scope)
        problem = counter_value_problem(requested)
        if problem is not None:
            raise CutOverRefusedError(f"counter {counter_id}: {requested} is {problem}. Nothing was changed.")
        document = counters.find_one({"_id": counter_id})
        previous = None if document is None else document.get("seq")
        if previous is not None and counter_value_problem(previous) is not None:
            raise CutOverRefusedError(
                f"counter {counter_id} holds seq {shown(previous)}, not a file number: set it by hand after checking "
                "the file ledger. Nothing was changed."
            )
        if previous is not None and requested < previous:
            raise CutOverRefusedError(
                f"counter {counter_id} is at {previous}; moving it back to {requested} would issue numbers ESR already "
                "has. A counter only moves forward. Nothing was changed."
            )
        in_ledger = ledger.highest_file(deanery or "")
        if in_ledger is not None and requested < in_ledger[0]:
            raise CutOverRefusedError(
                f"counter {counter_id}: the file ledger holds {in_ledger[1]} (number {in_ledger[0]}), above {requested}: "
                "numbering from there would repeat it. Nothing was changed."
            )
        moves.append(CounterMove(counter_id, previous, requested))
    for move in moves:
        _move(database, move)
    done = [move.describe(file_type) for move in moves]
    if scope == DEANERY_SCOPE and counters.find_one({"_id": file_type}, {"_id": 1}) is not None:
        counters.delete_one({"_id": file_type})
        done.append(f"counter {file_type} (shared sequence) retired: {file_type} files are numbered per deanery now")
    return done


def _refuse_open_batches(database: Database, file_type: str) -> None:
    open_in = []
    for document in database[COUNTER].find({"_id": {"$regex": f"^{file_type}(_|$)"}}):
        if document.get("openBatch") is not None:
            open_in.append(str(document["_id"]))
        slots = document.get("deaneries")
        if isinstance(slots, Mapping):
            open_in.extend(
                f"{document['_id']} ({deanery})"
                for deanery, slot in sorted(slots.items())
                if not isinstance(slot, Mapping) or slot.get("openBatch") is not None
            )
    if open_in:
        raise CutOverRefusedError(
            f"counter(s) {', '.join(open_in)} hold an open batch: its numbers are being taken or written. Stop the "
            "schedules, let each deanery's next run finish its batch (or wait for the runs in progress), then cut "
            "over. Nothing was changed."
        )


def _move(database: Database, move: CounterMove) -> None:
    counters = database[COUNTER]
    if move.previous is None:
        try:
            counters.insert_one({"_id": move.counter_id, "seq": move.seq})
            return
        except DuplicateKeyError:
            moved = 0
    else:
        # Conditional on the value checked and on no batch having opened since: a run started meanwhile
        # leaves the counter alone and the cut-over stops.
        moved = counters.update_one(
            {"_id": move.counter_id, "seq": move.previous, "openBatch": None}, {"$set": {"seq": move.seq}}
        ).modified_count
    if not moved and move.previous != move.seq:
        raise CutOverRefusedError(
            f"counter {move.counter_id} changed while the cut-over ran (an export is running): stop the schedules and "
            "run the cut-over again."
        )
