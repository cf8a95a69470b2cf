"""Realistic, entirely fictitious GeneratedAppRecords and notifications for the demo run and the tests.

The personal values are invented but shaped like real ones (QQ-prefixed NI numbers, which HMRC never
issues; 7-digit GMC numbers; example.org e-mail addresses), so that leak tests can look for them.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from ..domain.deaneries import DEANERIES
from ..domain.notifications import CHANGED_DATES, CURRENT_OR_NEXT_TRAINEE, NEW_POST, WITHDRAWAL
from ..domain.records import DELETED_BEFORE_EXPORT, EXPORTED, TO_EXPORT
from ..domain.window import NOTIFICATION_RUN_TIME_UTC
from ..storage.collections import APP_RECORDS, NOTIFICATION_RECORDS

_FIRST_NAMES = ("Amara", "Oluwaseun", "Priya", "Tomasz", "Siobhan", "Mehmet", "Eilidh", "Kwame", "Hannah", "Rhys")
_LAST_NAMES = ("Okonkwo", "Nakamura", "Fitzgerald", "Kowalczyk", "Abernethy", "Chaudhry", "Lindqvist", "Mensah")
_TOWNS = ("Cambridge", "Leicester", "Maidstone", "Liverpool", "Manchester", "Newcastle", "Oxford", "Exeter")


def applicant_record(
    placement_id: int,
    deanery: str,
    start_date: dt.date,
    *,
    post_number: str | None = None,
    status: str = TO_EXPORT,
    created: dt.datetime | None = None,
    rng: random.Random | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One GeneratedAppRecord as upstream writes it; ``overrides`` replace top-level fields."""
    rng = rng or random.Random(placement_id)
    start = dt.datetime.combine(start_date, dt.time.min)
    created = created or start - dt.timedelta(weeks=12)
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    record: dict[str, Any] = {
        "_id": ObjectId(),
        "placementId": placement_id,
        "deanery": deanery,
        "status": status,
        "startDate": start,
        "deaneryPostNumber": post_number or f"{deanery}/RGT00/{placement_id % 97:03d}/FY1/{placement_id % 13:03d}",
        "positionId": 7_600_000 + placement_id,
        "positionNumber": 300_000 + placement_id,
        "createdDate": created,
        "lastModifiedDate": created,
        "applicant": {
            "effectiveDate": start_date.isoformat(),
            "lastName": last,
            "firstName": first,
            "middleNames": rng.choice(("", "Grace", "Adebayo")),
            "title": rng.choice(("DR", "MR", "MS", "MX")),
            "dob": dt.datetime(rng.randint(1985, 1999), rng.randint(1, 12), rng.randint(1, 28)),
            "gender": rng.choice(("M", "F", "X")),
            "applicantEmailAddress": f"{first}.{last}.{placement_id}@example.org".lower(),
            "address": {
                "address1": f"{rng.randint(1, 180)} Hospital Road",
                "town": rng.choice(_TOWNS),
                "county": "",
                "postcode": f"ZZ{rng.randint(1, 99)} {rng.randint(1, 9)}XY",
                "country": "GB",
            },
            "homeTel": f"01632 {rng.randint(100000, 999999)}",
            "mobileTel": f"07700 {rng.randint(100000, 999999)}",
            "ethnicOriginCode": rng.choice(("A", "C", "H", "M", "Z")),
            "professionalBodies": [
                {
                    "body": "General Medical Council",
                    "regNumber": f"{7_000_000 + placement_id % 999_999:07d}",
                    "expiryDate": None,
                }
            ],
            "sexualOrientation": "Not stated",
            "religiousBelief": "Not stated",
            "nationality": "GB",
            "nationalTrainingNumber": f"{deanery}/{placement_id:06d}/F1",
            "ukNino": f"QQ{placement_id % 1_000_000:06d}C",
            "disability": "No",
            "projectedHireDate": start_date.isoformat(),
            "projectedEndDate": (start_date + dt.timedelta(weeks=17)).isoformat(),
            "maritalStatus": "Single",
            "previousLastName": "",
            "countryOfBirth": "GB",
            "contactLastName": rng.choice(_LAST_NAMES),
            "contactFirstName": rng.choice(_FIRST_NAMES),
            "contactTitle": "MRS",
            "contactGender": "F",
            "contactHomePhone": f"01632 {rng.randint(100000, 999999)}",
        },
    }
    record.update(overrides)
    return record


def demo_records(run_date: dt.date, per_deanery: int = 24, seed: int = 2021) -> list[dict[str, Any]]:
    """A day's worth of records in every deanery, with the awkward cases the export must handle."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    placement_ids = iter(range(100_001, 10_000_000))

    def add(deanery: str, start: dt.date, **kwargs: Any) -> dict[str, Any]:
        placement_id = next(placement_ids)
        record = applicant_record(placement_id, deanery, start, rng=random.Random(rng.random()), **kwargs)
        records.append(record)
        return record

    for deanery in DEANERIES:
        for _ in range(per_deanery):
            add(deanery, run_date + dt.timedelta(days=rng.randint(2, 90)))
        # Missing a mandatory field: becomes INVALID_DATA, the rest of the file still goes out.
        broken = add(deanery, run_date + dt.timedelta(days=10))
        del broken["applicant"]["dob"]
        # Past its start date and never exported: only a human can act now.
        add(deanery, run_date - dt.timedelta(days=3))
        # Too early for this window, already exported, deleted upstream: never touched.
        add(deanery, run_date + dt.timedelta(weeks=14))
        add(deanery, run_date + dt.timedelta(days=20), status=EXPORTED)
        add(deanery, run_date + dt.timedelta(days=20), status=DELETED_BEFORE_EXPORT)
    # A crowded post: 45 starters on one LDN post, more than the 40 ESR accepts in one file.
    for _ in range(45):
        add("LDN", run_date + dt.timedelta(days=30), post_number="LDN/RJ122/022/F1/001")
    return records


def notification_record(
    notification_id: int,
    deanery: str,
    created: dt.datetime,
    title_code: str = CURRENT_OR_NEXT_TRAINEE,
    *,
    post_number: str | None = None,
    status: str = TO_EXPORT,
    rng: random.Random | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """One notification record as upstream writes it, with the payload of its title code."""
    rng = rng or random.Random(notification_id)
    post = post_number or f"{deanery}/RGT00/{notification_id % 97:03d}/ST1/{notification_id % 13:03d}"
    rotation = created.date() + dt.timedelta(weeks=rng.randint(4, 12))

    def person() -> tuple[str, str, str]:
        return rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES), f"{7_000_000 + rng.randint(0, 999_999):07d}"

    record: dict[str, Any] = {
        "_id": ObjectId(),
        "notificationId": notification_id,
        "deanery": deanery,
        "status": status,
        "notificationTitleCode": title_code,
        "deaneryPostNumber": post,
        "managingDeaneryBodyCode": post.split("/", 1)[0],
        "createdDate": created,
    }
    if title_code == CURRENT_OR_NEXT_TRAINEE:
        current, following = person(), person()
        record.update(
            currentTraineeFirstName=current[0],
            currentTraineeLastName=current[1],
            currentTraineeGmcNumber=current[2],
            currentTraineeProjectedEndDate=(rotation - dt.timedelta(days=1)).isoformat(),
            currentTraineeWorkingHourIndicator=rng.choice((1.0, 0.8, 0.6)),
            currentTraineeVpdForNextPlacement="NOT KNOWN",
            nextAppointmentProjectedStartDate=rotation.isoformat(),
            nextAppointmentTraineeFirstName=following[0],
            nextAppointmentTraineeLastName=following[1],
            nextAppointmentTraineeEmailAddress=f"{following[0]}.{following[1]}.{notification_id}@example.org".lower(),
            nextAppointmentTraineeGmcNumber=following[2],
            nextAppointmentTraineeGrade=rng.choice(("ST1", "ST3", "CT1")),
            nextAppointmentCurrentPlacementVpd=f"{rng.randint(1, 999):03d}",
            postVacantAtNextRotation=False,
        )
    elif title_code == WITHDRAWAL:
        withdrawn = person()
        record.update(
            withdrawnTraineeFirstName=withdrawn[0],
            withdrawnTraineeLastName=withdrawn[1],
            withdrawnTraineeGmcNumber=withdrawn[2],
            withdrawalReason="3",
        )
    elif title_code == CHANGED_DATES:
        trainee = person()
        record.update(
            nextAppointmentTraineeFirstName=trainee[0],
            nextAppointmentTraineeLastName=trainee[1],
            nextAppointmentTraineeGmcNumber=trainee[2],
            changeOfProjectedHireDate=rotation.isoformat(),
            changeOfProjectedEndDate=(rotation + dt.timedelta(weeks=26)).isoformat(),
        )
    elif title_code == NEW_POST:
        record["postVacantAtNextRotation"] = True
    record.update(overrides)
    return record


def demo_notifications(run_date: dt.date, per_deanery: int = 8, seed: int = 2021) -> list[dict[str, Any]]:
    """A day's notifications in every deanery, of every kind, with the cases the export must handle."""
    rng = random.Random(seed)
    notifications: list[dict[str, Any]] = []
    notification_ids = iter(range(900_001, 10_000_000))
    cutoff = dt.datetime.combine(run_date, NOTIFICATION_RUN_TIME_UTC)

    def add(deanery: str, created: dt.datetime, title_code: str, **kwargs: Any) -> dict[str, Any]:
        notification_id = next(notification_ids)
        record = notification_record(
            notification_id, deanery, created, title_code, rng=random.Random(rng.random()), **kwargs
        )
        notifications.append(record)
        return record

    codes = (CURRENT_OR_NEXT_TRAINEE, CURRENT_OR_NEXT_TRAINEE, WITHDRAWAL, CHANGED_DATES, NEW_POST)
    for deanery in DEANERIES:
        for index in range(per_deanery):
            add(deanery, cutoff - dt.timedelta(minutes=rng.randint(1, 20 * 60)), codes[index % len(codes)])
        # A withdrawal without the withdrawn trainee's names: becomes INVALID_DATA.
        add(deanery, cutoff - dt.timedelta(hours=2), WITHDRAWAL, withdrawnTraineeLastName=None)
        # Created after today's cut-off: tomorrow's file. Already exported: never touched.
        add(deanery, cutoff + dt.timedelta(minutes=30), NEW_POST)
        add(deanery, cutoff - dt.timedelta(days=3), CURRENT_OR_NEXT_TRAINEE, status=EXPORTED)
    return notifications


def seed_demo_data(database: Database, run_date: dt.date) -> dict[str, int]:
    """Insert the demo records and notifications into whichever collection is empty; returns the counts."""
    inserted = {}
    for collection, documents in (
        (APP_RECORDS, demo_records),
        (NOTIFICATION_RECORDS, demo_notifications),
    ):
        if database[collection].estimated_document_count() > 0:
            continue
        batch = documents(run_date)
        database[collection].insert_many(batch)
        inserted[collection] = len(batch)
    # No counter is seeded: the demo's 13 deaneries number their files 1..13 in the one shared sequence. A real
    # instance continues the legacy exporter's numbers by `esr-export-local cut-over` (README).
    return inserted
