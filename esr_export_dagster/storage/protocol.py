"""The export protocol's steps, each named on the MongoDB commands that carry it out.

Every write of the protocol (and the selection's read) passes its step as MongoDB's ``comment``: a real
server shows it in its logs, ``currentOp`` and the profiler, so an operator can tell which step a slow or
failing command belongs to; and the fault tests stop or fail a run at an exact step by reading the name on
the wire (esr_export_dagster_tests/kill_points.py), instead of recognising the step by the shape of its
query, which a refactor of ledger.py silently broke.
"""

from __future__ import annotations

# The selection's reads of the records: the first step of a run, before any write.
SELECT_RECORDS = "esr-export:select-records"
# The counter's compare-and-set that opens a deanery's batch (or the insert of its first counter).
OPEN_BATCH = "esr-export:open-batch"
# The counter's compare-and-set that takes the batch's sequence numbers.
NUMBER_BATCH = "esr-export:number-batch"
# The file ledger's entry of a file, created before anything is written or marked.
START_FILE = "esr-export:start-file"
# The file's waiting records claimed with its name, just before they are marked.
CLAIM_RECORDS = "esr-export:claim-records"
# The records of a file marked EXPORTED with its name.
MARK_RECORDS = "esr-export:mark-records"
# The file ledger's note that the file's records are marked, before the file is published.
NOTE_FILE_MARKED = "esr-export:note-file-marked"
# The file ledger's note that the file is complete (line count, checksum, size).
COMPLETE_FILE = "esr-export:complete-file"
# The counter's release of the batch once every file is complete.
CLOSE_BATCH = "esr-export:close-batch"
# The file ledger's note that a file is in ESR's drop, after the put.
RECORD_DELIVERY = "esr-export:record-delivery"

PROTOCOL_STEPS = (
    SELECT_RECORDS,
    OPEN_BATCH,
    NUMBER_BATCH,
    START_FILE,
    CLAIM_RECORDS,
    MARK_RECORDS,
    NOTE_FILE_MARKED,
    COMPLETE_FILE,
    CLOSE_BATCH,
    RECORD_DELIVERY,
)
