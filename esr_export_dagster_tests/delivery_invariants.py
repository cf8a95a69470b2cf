"""Delivery's invariant, checked against the file ledger, the export directory and ESR's drop itself:
every written file is delivered exactly once, byte for byte."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pymongo.database import Database

from esr_export_dagster.domain.esr_csv import parse_export_file_name
from esr_export_dagster.domain.streams import ExportStream
from esr_export_dagster.storage.collections import EXPORT_FILE

from .invariants import files_on_disk


class DropView(Protocol):
    def stored(self) -> dict[str, list[bytes]]:
        """Every name in the drop with every object ever stored under it (versions), oldest first."""

    def leftovers(self) -> list[str]:
        """Names in the drop that are not export files (temporary names left behind)."""


@dataclass
class FolderDrop:
    """A local drop folder, or an SFTP server's folder (the test's sshd serves this machine's disk)."""

    path: Path

    def stored(self) -> dict[str, list[bytes]]:
        if not self.path.exists():
            return {}
        return {p.name: [p.read_bytes()] for p in sorted(self.path.iterdir()) if p.name.startswith("DE_")}

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith("DE_")) if self.path.exists() else []


@dataclass
class S3Drop:
    """A versioned bucket: a key put twice would show two versions."""

    client: Any
    bucket: str
    prefix: str

    def stored(self) -> dict[str, list[bytes]]:
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        found: dict[str, list[bytes]] = {}
        for version in sorted(listing.get("Versions", []), key=lambda v: v["LastModified"]):
            body = self.client.get_object(Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"])
            found.setdefault(version["Key"].rsplit("/", 1)[-1], []).append(body["Body"].read())
        return found

    def leftovers(self) -> list[str]:
        return sorted(name for name in self.stored() if not name.startswith("DE_"))


def assert_every_file_delivered_once(
    database: Database, export_dir: Path, stream: ExportStream, drop: DropView
) -> None:
    """Every file of ``stream`` in ESR_EXPORT_DIR is in the drop exactly once, with the same bytes, and the
    file ledger records that delivery with the file's SHA-256; nothing else of the stream is in the drop."""
    written = files_on_disk(export_dir, file_type=stream.file_type)
    stored = {
        name: versions
        for name, versions in drop.stored().items()
        if name.startswith("DE_") and parse_export_file_name(name).file_type == stream.file_type
    }
    assert sorted(stored) == sorted(written), f"drop holds {sorted(stored)}, ESR_EXPORT_DIR {sorted(written)}"
    for name, path in written.items():
        content = path.read_bytes()
        assert len(stored[name]) == 1, f"{name} was put {len(stored[name])} times"
        assert stored[name][0] == content, f"{name} in the drop differs from the archived file"
        entry = database[EXPORT_FILE].find_one({"_id": name})
        assert entry is not None and "undelivered" not in entry, f"{name} is not recorded as delivered"
        sha256 = hashlib.sha256(content).hexdigest()
        assert entry["delivered"]["sha256"] == sha256 == entry["sha256"], f"{name} ledger checksum"
        assert entry["delivered"]["size"] == len(content)
        assert entry["deliveredAt"] is not None
    assert drop.leftovers() == [], f"left behind in the drop: {drop.leftovers()}"
