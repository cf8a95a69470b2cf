"""The export's invariants, checked against MongoDB and the files on disk.

Shared by every test that exports: whatever happened on the way (retries, conflicts, kills, concurrent
runs), these must hold afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pymongo.database import Database

from esr_export_dagster.domain.esr_csv import parse_export_file_name
from esr_export_dagster.domain.records import EXPORTED
from esr_export_dagster.domain.sequence import SHARED_SCOPE, sequence_counter_id
from esr_export_dagster.domain.streams import APP_STREAM, ExportStream
from esr_export_dagster.storage.collections import COUNTER, EXPORT_FILE
from esr_export_dagster.storage.export_dir import ExportDirectory


def file_placements(path: Path) -> list[int]:
    """The business ids on a file's lines: placement ids (APP) or notification ids (DNC)."""
    return ExportDirectory(path.parent).references(path.name)


def files_on_disk(export_dir: Path, deanery: str | None = None, file_type: str = "APP") -> dict[str, Path]:
    found = {}
    for path in sorted(export_dir.glob("DE_*.DAT")):
        name = parse_export_file_name(path.name)
        if name.file_type == file_type and (deanery is None or name.deanery == deanery):
            found[path.name] = path
    return found


def assert_export_invariants(
    database: Database,
    export_dir: Path,
    stream: ExportStream = APP_STREAM,
    first_sequence: dict[str, int] | None = None,
    scope: str = SHARED_SCOPE,
) -> None:
    """Exactly once, and gap-free per counter (one per file type in shared scope, one per deanery and file
    type in deanery scope), across everything one stream exported so far. ``first_sequence`` is by counter id."""
    first_sequence = first_sequence or {}
    file_type = stream.file_type
    reference = stream.reference_field
    files = files_on_disk(export_dir, file_type=file_type)
    placements_by_file = {name: file_placements(path) for name, path in files.items()}

    # Exactly once: no placement in two files, and no placement twice in one file.
    seen: dict[int, str] = {}
    for name, placements in placements_by_file.items():
        for placement in placements:
            assert placement not in seen, f"placement {placement} is in {seen[placement]} and {name}"
            seen[placement] = name

    # Every EXPORTED record names the one file whose line holds it, and every line is such a record.
    exported = {
        doc[reference]: doc["exportedFileName"]
        for doc in database[stream.records_collection].find(
            {"status": EXPORTED, "exportedFileName": {"$exists": True}}, {reference: 1, "exportedFileName": 1}
        )
    }
    for placement, name in exported.items():
        assert name in placements_by_file, f"placement {placement} is marked with {name}, which does not exist"
        assert placement in placements_by_file[name], f"placement {placement} is marked with {name} but not in it"
    for name, placements in placements_by_file.items():
        for placement in placements:
            assert exported.get(placement) == name, (
                f"{name} holds placement {placement}, marked {exported.get(placement)}"
            )

    # Gap-free: per counter, file numbers run without gap or duplicate up to it; the ledger agrees.
    sequences: dict[str, list[int]] = defaultdict(list)
    deaneries: dict[str, set[str]] = defaultdict(set)
    for name in files:
        parsed = parse_export_file_name(name)
        counter_id = sequence_counter_id(file_type, parsed.deanery, scope)
        sequences[counter_id].append(parsed.sequence)
        deaneries[counter_id].add(parsed.deanery)
    for counter_id, numbers in sequences.items():
        numbers.sort()
        start = first_sequence.get(counter_id, numbers[0])
        assert numbers == list(range(start, start + len(numbers))), f"{counter_id} sequence numbers {numbers}"
        counter = database[COUNTER].find_one({"_id": counter_id})
        assert counter is not None and counter["seq"] == numbers[-1], f"{counter_id} counter {counter} vs {numbers}"
        slots = counter.get("deaneries", {}).values() if scope == SHARED_SCOPE else [counter]
        assert all(slot.get("openBatch") is None for slot in slots), f"{counter_id} still has an open batch: {counter}"
        in_ledger = {"fileType": file_type, "state": "COMPLETE"}
        if scope != SHARED_SCOPE:
            (in_ledger["deanery"],) = deaneries[counter_id]
        ledger = sorted(doc["seq"] for doc in database[EXPORT_FILE].find(in_ledger))
        assert ledger == numbers, f"{counter_id} ledger {ledger} vs files {numbers}"
