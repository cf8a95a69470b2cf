"""Writing export files so that a file either appears whole or not at all.

The files hold personal data: the directory is kept 0700 and every file 0600. A file is written under a
temporary name beside its final one, flushed to disk, then linked to its final name, which fails if the
name is taken: a file ESR may already have is never replaced. A run killed half-way leaves at most a
temporary file, which the next run removes.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..domain.esr_csv import parse_export_file_name
from .errors import ExportFileConflictError

_TEMP_PREFIX = ".partial-"
_DIRECTORY_MODE = 0o700
_FILE_MODE = 0o600


class ExportDirectoryError(RuntimeError):
    """The export directory cannot take files; raised before any sequence number is taken."""


@dataclass(frozen=True)
class WrittenFile:
    name: str
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class StagedFile:
    name: str
    temp: Path
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class ExportDirectory:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def ensure_writable(self) -> None:
        """Create the directory if need be and prove a file can be written, linked and removed."""
        try:
            self.path.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
            os.chmod(self.path, _DIRECTORY_MODE)
            probe = self.path / f"{_TEMP_PREFIX}probe-{uuid.uuid4().hex}"
            linked = probe.with_name(probe.name + "-linked")
            self._write_synced(probe, b"")
            try:
                os.link(probe, linked)
                linked.unlink()
            finally:
                probe.unlink()
        except OSError as error:
            raise ExportDirectoryError(
                f"ESR_EXPORT_DIR {str(self.path)!r} is not writable: {_describe(error)}. "
                "No sequence number was taken and no record was changed."
            ) from None

    def write_atomically(self, name: str, content: bytes) -> WrittenFile:
        """Put ``content`` under ``name`` whole, unless the name is taken (``stage`` then ``publish``)."""
        return self.publish(self.stage(name, content))

    def stage(self, name: str, content: bytes) -> StagedFile:
        """``content`` written and flushed under a temporary name beside ``name``, not yet visible as ``name``.

        A full or failing disk stops here, before anything else about the file has changed.
        """
        parse_export_file_name(name)  # only allow-listed names ever become paths
        temp = self.path / f"{_TEMP_PREFIX}{name}.{os.getpid()}.{uuid.uuid4().hex}"
        try:
            self._write_synced(temp, content)
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise ExportDirectoryError(
                f"Could not write {name} to ESR_EXPORT_DIR {str(self.path)!r}: {_describe(error)}. "
                "The file is written by the next run of its deanery."
            ) from None
        return StagedFile(name, temp, content)

    def publish(self, staged: StagedFile) -> WrittenFile:
        """Give a staged file its name, unless the name is taken; the temporary file is gone either way.

        A name that already holds exactly these bytes is this very file, published by an attempt that was cut
        off before it could record it: that is success. A name holding anything else is refused.
        """
        final = self.path / staged.name
        try:
            try:
                # A hard link, unlike a rename, never replaces what is there.
                os.link(staged.temp, final)
            except FileExistsError:
                if not self.holds(staged.name, staged.content):
                    raise ExportFileConflictError(
                        f"{staged.name} already exists in ESR_EXPORT_DIR {str(self.path)!r} with other content; "
                        "nothing is ever overwritten."
                    ) from None
            self._sync_directory()
        except OSError as error:
            raise ExportDirectoryError(
                f"Could not write {staged.name} to ESR_EXPORT_DIR {str(self.path)!r}: {_describe(error)}. "
                "The file is written by the next run of its deanery."
            ) from None
        finally:
            self.discard(staged)
        return WrittenFile(staged.name, final, len(staged.content), staged.sha256)

    def discard(self, staged: StagedFile) -> None:
        staged.temp.unlink(missing_ok=True)

    def holds(self, name: str, content: bytes) -> bool:
        """Whether ``name`` is a regular file of exactly ``content``."""
        path = self.path / name
        try:
            return path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content
        except OSError:
            return False

    def highest_sequence(self, deanery: str | None, file_type: str) -> str | None:
        """The file of ``deanery`` (``None``: of any deanery) and ``file_type`` with the highest sequence number
        here, if any."""
        highest: tuple[int, str] | None = None
        for path in self.path.glob(f"DE_{deanery or '*'}_{file_type}_*.DAT"):
            try:
                parsed = parse_export_file_name(path.name)
            except ValueError:
                continue  # not one of ours: it cannot take a number from this stream
            if highest is None or parsed.sequence > highest[0]:
                highest = (parsed.sequence, path.name)
        return highest[1] if highest else None

    def read(self, name: str) -> bytes:
        parse_export_file_name(name)
        return (self.path / name).read_bytes()

    def references(self, name: str) -> list[int]:
        """The business ids in field 2 of a file's lines: placement ids (APP), notification ids (DNC)."""
        rows = csv.reader(io.StringIO(self.read(name).decode("utf-8")))
        return [int(row[1]) for row in rows if len(row) > 1 and row[1]]

    def exists(self, name: str) -> bool:
        parse_export_file_name(name)
        return (self.path / name).is_file()

    def is_taken(self, name: str) -> bool:
        """Whether anything at all (a file, a directory, a dangling link) holds ``name``."""
        parse_export_file_name(name)
        return os.path.lexists(self.path / name)

    def remove_stale_partials(self, older_than_seconds: float, now: float) -> int:
        """Temporary files of killed runs; recent ones may belong to a run still writing.

        Everything named ``.partial-*`` here is this exporter's by its prefix, a directory as much as a
        file (one left by hand or by a copy tool must not stop every export). One that cannot be removed
        is left for a later run rather than failing this one: no export file is ever read from a partial
        name, and each write takes a fresh one.
        """
        removed = 0
        for partial in self.path.glob(f"{_TEMP_PREFIX}*"):
            try:
                if now - partial.lstat().st_mtime <= older_than_seconds:
                    continue
                if partial.is_dir() and not partial.is_symlink():
                    shutil.rmtree(partial)
                else:
                    partial.unlink()
                removed += 1
            except OSError:
                continue
        return removed

    def _write_synced(self, path: Path, content: bytes) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        try:
            view = memoryview(content)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _sync_directory(self) -> None:
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _describe(error: OSError) -> str:
    name = errno.errorcode.get(error.errno or 0, "")
    return f"{error.strerror or error.__class__.__name__}{f' ({name})' if name else ''}"
