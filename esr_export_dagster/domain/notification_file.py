"""The ESR DNC (notification, change mode) file: its line layout, in one place.

One layout for every notification kind: each line carries the common columns, and the payload columns of
its own title code; the others stay empty, so a withdrawal never carries a next appointment's details.
``docs/dnc-file-layout.md`` documents it and a golden-file test pins it. As for APP, this is the
project's reading of ESR's Generic Inbound Notification interface (NHS0098) from public material.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .esr_csv import Column, RenderReport, compile_columns, render_file, render_line
from .notifications import CHANGED_DATES, CURRENT_OR_NEXT_TRAINEE, NEW_POST, WITHDRAWAL

DNC_FILE_TYPE = "DNC"
RECORD_TYPE = "DNC"

_TRAINEE = frozenset({CURRENT_OR_NEXT_TRAINEE})
_TRAINEE_OR_CHANGED = frozenset({CURRENT_OR_NEXT_TRAINEE, CHANGED_DATES})
_WITHDRAWAL = frozenset({WITHDRAWAL})
_CHANGED = frozenset({CHANGED_DATES})
_VACANCY = frozenset({CURRENT_OR_NEXT_TRAINEE, NEW_POST})


def _column(name: str, kind: str, applies_to: frozenset[str] | None = None) -> Column:
    return Column(name, name, kind, applies_to)


DNC_COLUMNS: tuple[Column, ...] = (
    _column("notificationId", "integer"),
    _column("notificationTitleCode", "text"),
    _column("deaneryPostNumber", "text"),
    _column("managingDeaneryBodyCode", "text"),
    _column("currentTraineeFirstName", "text", _TRAINEE),
    _column("currentTraineeLastName", "text", _TRAINEE),
    _column("currentTraineeGmcNumber", "text", _TRAINEE),
    _column("currentTraineeProjectedEndDate", "date", _TRAINEE),
    _column("currentTraineeWorkingHourIndicator", "decimal", _TRAINEE),
    _column("currentTraineeVpdForNextPlacement", "text", _TRAINEE),
    _column("nextAppointmentProjectedStartDate", "date", _TRAINEE),
    _column("nextAppointmentTraineeFirstName", "text", _TRAINEE_OR_CHANGED),
    _column("nextAppointmentTraineeLastName", "text", _TRAINEE_OR_CHANGED),
    _column("nextAppointmentTraineeEmailAddress", "text", _TRAINEE),
    _column("nextAppointmentTraineeGmcNumber", "text", _TRAINEE_OR_CHANGED),
    _column("nextAppointmentTraineeGrade", "text", _TRAINEE),
    _column("nextAppointmentCurrentPlacementVpd", "text", _TRAINEE),
    _column("withdrawnTraineeFirstName", "text", _WITHDRAWAL),
    _column("withdrawnTraineeLastName", "text", _WITHDRAWAL),
    _column("withdrawnTraineeGmcNumber", "text", _WITHDRAWAL),
    _column("withdrawalReason", "text", _WITHDRAWAL),
    _column("postVacantAtNextRotation", "flag", _VACANCY),
    _column("changeOfProjectedHireDate", "date", _CHANGED),
    _column("changeOfProjectedEndDate", "date", _CHANGED),
)


def render_notification_line(record: Mapping[str, Any], report: RenderReport | None = None) -> str:
    """One CSV line: the record type, then every column of ``DNC_COLUMNS``, without the line ending."""
    report = report if report is not None else RenderReport({})
    code = record.get("notificationTitleCode")
    # A title code that is not text selects no payload (a list could not even be looked up).
    kind = code if isinstance(code, str) else None
    return render_line(RECORD_TYPE, _RENDERING, record, report, kind=kind)


def render_notification_file(records: Iterable[Mapping[str, Any]]) -> tuple[bytes, RenderReport]:
    """The whole file: one line per notification in the order given, nothing else."""
    report = RenderReport({})
    return render_file(render_notification_line(record, report) for record in records), report


_RENDERING = compile_columns(DNC_COLUMNS)
