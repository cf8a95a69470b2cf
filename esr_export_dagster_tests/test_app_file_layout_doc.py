"""docs/app-file-layout.md is the documented layout: it must say exactly what the code writes."""

from __future__ import annotations

import re

from esr_export_dagster.domain.app_file import APP_COLUMNS

from .conftest import PROJECT_ROOT

_ROW = re.compile(r"^\| (\d+) \| (\w+) \| (?:`([^`]+)`|constant `APP`) \|", re.MULTILINE)


def test_app_file_layout_doc_matches_the_code():
    text = (PROJECT_ROOT / "docs" / "app-file-layout.md").read_text(encoding="utf-8")
    rows = [(int(n), name, source) for n, name, source in _ROW.findall(text)]

    assert rows[0][:2] == (1, "recordType")
    assert [(name, source) for _, name, source in rows[1:]] == [(c.name, c.source) for c in APP_COLUMNS]
    assert [n for n, _, _ in rows] == list(range(1, len(APP_COLUMNS) + 2))
