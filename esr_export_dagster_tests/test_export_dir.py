"""Writing export files whole or not at all, in a private directory (no MongoDB, no Dagster)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from esr_export_dagster.storage.errors import ExportFileConflictError
from esr_export_dagster.storage.export_dir import ExportDirectory, ExportDirectoryError, WrittenFile

NAME = "DE_EOE_APP_20210731_00000001.DAT"
CONTENT = b'APP,4200017,318204,11223,"EOE/RGT00/021/F1/003"\n'
NOW = 1_700_000_000.0


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def partials_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith(".partial-"))


@pytest.fixture
def export_dir(tmp_path: Path) -> ExportDirectory:
    directory = ExportDirectory(tmp_path / "esr" / "export")
    directory.ensure_writable()
    return directory


# --- ensure_writable -------------------------------------------------------------------------------------


def test_ensure_writable_creates_a_private_directory_and_leaves_no_probe(tmp_path):
    directory = ExportDirectory(tmp_path / "a" / "b" / "export")

    directory.ensure_writable()

    assert directory.path.is_dir()
    assert mode_of(directory.path) == 0o700
    assert list(directory.path.iterdir()) == []


def test_ensure_writable_makes_an_existing_open_directory_private(tmp_path):
    existing = tmp_path / "export"
    existing.mkdir()
    existing.chmod(0o755)

    ExportDirectory(existing).ensure_writable()

    assert mode_of(existing) == 0o700


def test_ensure_writable_keeps_files_already_there(tmp_path, export_dir):
    export_dir.write_atomically(NAME, CONTENT)

    export_dir.ensure_writable()

    assert (export_dir.path / NAME).read_bytes() == CONTENT


def test_a_directory_that_cannot_be_created_is_reported_by_path(tmp_path):
    # Tests run as root here, so permissions cannot make mkdir fail; a regular file in the way does.
    blocker = tmp_path / "afile"
    blocker.write_bytes(b"not a directory")
    path = blocker / "sub"

    with pytest.raises(ExportDirectoryError) as raised:
        ExportDirectory(path).ensure_writable()

    message = str(raised.value)
    assert repr(str(path)) in message
    assert "is not writable" in message
    assert "No sequence number was taken" in message
    assert not path.exists()


def test_a_path_that_is_a_file_is_not_a_writable_directory(tmp_path):
    path = tmp_path / "export"
    path.write_bytes(b"")

    with pytest.raises(ExportDirectoryError, match="is not writable"):
        ExportDirectory(path).ensure_writable()


# --- write_atomically ------------------------------------------------------------------------------------


def test_a_written_file_is_private_and_holds_exactly_the_content(export_dir):
    written = export_dir.write_atomically(NAME, CONTENT)

    path = export_dir.path / NAME
    assert path.read_bytes() == CONTENT
    assert mode_of(path) == 0o600
    assert mode_of(export_dir.path) == 0o700
    assert written == WrittenFile(name=NAME, path=path, size=len(CONTENT), sha256=hashlib.sha256(CONTENT).hexdigest())


def test_a_written_file_is_private_whatever_the_umask(export_dir):
    previous = os.umask(0)
    try:
        export_dir.write_atomically(NAME, CONTENT)
    finally:
        os.umask(previous)

    assert mode_of(export_dir.path / NAME) == 0o600


def test_writing_leaves_no_temporary_file(export_dir):
    export_dir.write_atomically(NAME, CONTENT)
    export_dir.write_atomically("DE_EOE_APP_20210731_00000002.DAT", b"")

    assert sorted(p.name for p in export_dir.path.iterdir()) == [NAME, "DE_EOE_APP_20210731_00000002.DAT"]


def test_an_empty_and_a_large_file_are_written_whole(export_dir):
    large = b"APP," + b"x" * (3 * 1024 * 1024) + b"\n"

    empty = export_dir.write_atomically(NAME, b"")
    big = export_dir.write_atomically("DE_EOE_APP_20210731_00000002.DAT", large)

    assert (empty.size, empty.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert (export_dir.path / big.name).read_bytes() == large
    assert big.size == len(large)


def test_writing_a_name_again_with_other_content_is_refused_and_the_first_file_kept(export_dir):
    export_dir.write_atomically(NAME, b"first\n")

    with pytest.raises(ExportFileConflictError, match=f"{NAME} already exists .* nothing is ever overwritten"):
        export_dir.write_atomically(NAME, CONTENT)

    assert export_dir.read(NAME) == b"first\n"
    assert partials_in(export_dir.path) == []


def test_writing_a_name_again_with_the_same_content_is_the_same_file(export_dir):
    export_dir.write_atomically(NAME, CONTENT)

    written = export_dir.write_atomically(NAME, CONTENT)

    assert export_dir.read(NAME) == CONTENT
    assert written.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert partials_in(export_dir.path) == []


def test_read_and_exists_see_a_written_file(export_dir):
    assert not export_dir.exists(NAME)

    export_dir.write_atomically(NAME, CONTENT)

    assert export_dir.exists(NAME)
    assert export_dir.read(NAME) == CONTENT


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "../" + NAME,
        NAME + "/../x",
        "sub/" + NAME,
        ".partial-" + NAME,
        "notes.txt",
        "DE_XYZ_APP_20210731_00000001.DAT",
        "DE_EOE_APP_20210731_00000001.dat",
        "",
    ],
)
def test_write_atomically_refuses_names_that_are_not_esr_export_names(export_dir, tmp_path, name):
    with pytest.raises(ValueError):
        export_dir.write_atomically(name, CONTENT)

    assert list(export_dir.path.iterdir()) == []
    assert not (tmp_path / "esr" / "x").exists()


@pytest.mark.parametrize("name", ["../x", "notes.txt", ".partial-" + NAME])
def test_read_and_exists_refuse_names_that_are_not_esr_export_names(export_dir, name):
    with pytest.raises(ValueError):
        export_dir.read(name)
    with pytest.raises(ValueError):
        export_dir.exists(name)


def test_write_atomically_refuses_a_name_with_a_trailing_newline(export_dir):
    try:
        export_dir.write_atomically(NAME + "\n", CONTENT)
    except ValueError:
        pass

    assert list(export_dir.path.iterdir()) == []


def test_a_name_taken_by_a_directory_is_refused_and_leaves_no_temporary_file(export_dir):
    (export_dir.path / NAME).mkdir()

    with pytest.raises(ExportFileConflictError) as raised:
        export_dir.write_atomically(NAME, CONTENT)

    assert NAME in str(raised.value)
    assert (export_dir.path / NAME).is_dir()
    assert partials_in(export_dir.path) == []


def test_writing_into_a_directory_that_does_not_exist_raises_export_directory_error(tmp_path):
    directory = ExportDirectory(tmp_path / "missing")

    with pytest.raises(ExportDirectoryError, match="Could not write"):
        directory.write_atomically(NAME, CONTENT)

    assert not (tmp_path / "missing").exists()


# --- remove_stale_partials -------------------------------------------------------------------------------


def test_only_temporary_files_older_than_the_limit_are_removed(export_dir):
    path = export_dir.path
    files = {
        ".partial-" + NAME + ".123.old": NOW - 3600,
        ".partial-probe-old": NOW - 601,
        ".partial-" + NAME + ".456.recent": NOW - 10,
        ".partial-exactly-at-limit": NOW - 600,
        NAME: NOW - 86_400,
        ".hidden-old": NOW - 86_400,
        "notes.txt": NOW - 86_400,
    }
    for name, mtime in files.items():
        (path / name).write_bytes(b"x")
        os.utime(path / name, (mtime, mtime))

    removed = export_dir.remove_stale_partials(older_than_seconds=600, now=NOW)

    assert removed == 2
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [
            ".partial-" + NAME + ".456.recent",
            ".partial-exactly-at-limit",
            NAME,
            ".hidden-old",
            "notes.txt",
        ]
    )


def test_removing_stale_partials_from_a_clean_directory_removes_nothing(export_dir):
    export_dir.write_atomically(NAME, CONTENT)
    os.utime(export_dir.path / NAME, (NOW - 86_400, NOW - 86_400))

    assert export_dir.remove_stale_partials(older_than_seconds=0, now=NOW) == 0
    assert export_dir.read(NAME) == CONTENT


def test_a_partial_left_by_a_killed_write_is_cleared_by_the_next_run(export_dir):
    stale = export_dir.path / f".partial-{NAME}.999.deadbeef"
    stale.write_bytes(CONTENT[:10])
    os.utime(stale, (NOW - 7200, NOW - 7200))

    assert export_dir.remove_stale_partials(older_than_seconds=3600, now=NOW) == 1
    export_dir.write_atomically(NAME, CONTENT)

    assert sorted(p.name for p in export_dir.path.iterdir()) == [NAME]


def test_a_stale_partial_directory_is_removed_with_its_contents_and_a_recent_one_is_left(export_dir):
    stale = export_dir.path / ".partial-copied-by-hand"
    (stale / "nested").mkdir(parents=True)
    (stale / "nested" / NAME).write_bytes(CONTENT)
    os.utime(stale, (NOW - 7200, NOW - 7200))
    recent = export_dir.path / ".partial-still-being-written"
    recent.mkdir()
    os.utime(recent, (NOW - 10, NOW - 10))
    export_dir.write_atomically(NAME, CONTENT)

    removed = export_dir.remove_stale_partials(older_than_seconds=3600, now=NOW)

    assert removed == 1
    assert sorted(p.name for p in export_dir.path.iterdir()) == [".partial-still-being-written", NAME]
    assert export_dir.read(NAME) == CONTENT


def test_a_stale_partial_symlink_is_removed_and_what_it_points_to_is_left(export_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_bytes(b"kept")
    link = export_dir.path / ".partial-link"
    link.symlink_to(elsewhere, target_is_directory=True)
    os.utime(link, (NOW - 7200, NOW - 7200), follow_symlinks=False)

    assert export_dir.remove_stale_partials(older_than_seconds=3600, now=NOW) == 1

    assert not link.is_symlink()
    assert (elsewhere / "keep.txt").read_bytes() == b"kept"
