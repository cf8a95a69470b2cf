"""The package uses Dagster's public API only: a private module (``dagster._...``) can change in any release."""

from __future__ import annotations

from pathlib import Path

import esr_export_dagster

PACKAGE = Path(esr_export_dagster.__file__).parent


def private_dagster_references(root: Path) -> list[str]:
    """``file:line: text`` for every line under ``root`` naming ``dagster._`` (what ``grep -r "dagster\\._"`` finds)."""
    return [
        f"{path.relative_to(root)}:{number}: {line.strip()}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in {".py", ".yaml", ".yml", ".toml", ".md"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "dagster._" in line
    ]


def test_no_file_of_the_package_names_a_private_dagster_module():
    found = private_dagster_references(PACKAGE)
    assert not found, "private Dagster API in the package:\n" + "\n".join(found)


def test_the_search_names_the_file_and_line_of_a_private_import(tmp_path):
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "io.py").write_text(
        "import dagster\nfrom dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager\n"
    )
    (tmp_path / "clean.py").write_text("from dagster import FilesystemIOManager\n")

    assert private_dagster_references(tmp_path) == [
        "storage/io.py:2: from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager"
    ]
