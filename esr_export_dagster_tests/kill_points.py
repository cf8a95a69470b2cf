"""Commands of the export protocol, recognised on the wire, for fault injection and kill tests."""

from __future__ import annotations

from esr_export_dagster.domain.streams import STREAMS

from .wire_proxy import Command, writes_to

_counter_write = writes_to("counter")
_records_writes = [writes_to(stream.records_collection) for stream in STREAMS]


def _updates(command: Command) -> list[tuple[dict, dict]]:
    return [(s.get("q", {}), s.get("u", {})) for s in command.statements()] if command.name == "update" else []


def selects_records(command: Command) -> bool:
    """The selection's read of the records (the first step of a run, before any write)."""
    return command.name == "find" and command.collection in {stream.records_collection for stream in STREAMS}


def _slot_fields(fields: dict, name: str) -> list:
    """The values of a deanery's ``openBatch``-field ``name``: at the top of its own counter (deanery scope) or
    under ``deaneries.<DEANERY>.`` of the shared one."""
    return [value for key, value in fields.items() if key == name or key.endswith(f".{name}")]


def of_deanery(command: Command, deanery: str) -> bool:
    """A counter write about ``deanery``'s batch: to its own counter, or to its part of the shared one."""
    if any(str(target).endswith(f"_{deanery}") for target in command.target_ids):
        return True
    return any(key.startswith(f"deaneries.{deanery}.") for q, _ in _updates(command) for key in q)


def opens_batch(command: Command) -> bool:
    return _counter_write(command) and (
        command.name == "insert" or any(None in _slot_fields(q, "openBatch") for q, _ in _updates(command))
    )


def numbers_batch(command: Command) -> bool:
    return _counter_write(command) and any(_slot_fields(q, "openBatch.state") for q, _ in _updates(command))


def closes_batch(command: Command) -> bool:
    return _counter_write(command) and any(
        None in _slot_fields(u.get("$set", {}), "openBatch") for _, u in _updates(command)
    )


def starts_file(command: Command) -> bool:
    return writes_to("exportFile")(command) and any("$setOnInsert" in u for _, u in _updates(command))


def marks_exported(command: Command) -> bool:
    return any(write(command) for write in _records_writes) and any(
        u.get("$set", {}).get("status") == "EXPORTED" for _, u in _updates(command)
    )


def records_marked_in_ledger(command: Command) -> bool:
    """The file ledger's note that the file's records are marked, sent before the file is written."""
    return writes_to("exportFile")(command) and any(
        u.get("$set", {}).get("state") == "MARKED" for _, u in _updates(command)
    )


def completes_file(command: Command) -> bool:
    return writes_to("exportFile")(command) and any(
        u.get("$set", {}).get("state") == "COMPLETE" for _, u in _updates(command)
    )


counter_write = _counter_write


def records_delivery(command: Command) -> bool:
    """The file ledger's note that a file is in ESR's drop, sent after the put."""
    return writes_to("exportFile")(command) and any("delivered" in u.get("$set", {}) for _, u in _updates(command))
