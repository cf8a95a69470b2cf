"""Pin every dependency of the project, direct and transitive, in constraints.txt (`make constraints`).

pip resolves the project with its `test` extra (which includes `local`) from scratch, ignoring whatever this
virtualenv holds, and installs nothing (`--dry-run --report`); every package it would install, pip itself
included, is written with its exact version. `make`, `.ci/run` (through `make test`) and the Dockerfile
install with `-c constraints.txt`, so every machine and the image get these versions until the next refresh.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"
PROJECT_NAME = "esr-export-dagster"
HEADER = """\
# Every dependency of esr-export-dagster, direct and transitive, at the version installed everywhere
# (`make`, CI through `make test`, the Dockerfile). Resolved on CPython {python} for Linux from
# pyproject.toml with its `test` extra. Do not edit by hand: refresh with `make constraints`.
"""


def normalised(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def resolve() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                "-e",
                f"{PROJECT_ROOT}[test]",
                "pip",
            ],
            check=True,
        )
        resolved = json.loads(report.read_text(encoding="utf-8"))
    pins = {normalised(item["metadata"]["name"]): item["metadata"]["version"] for item in resolved["install"]}
    pins.pop(PROJECT_NAME, None)
    return pins


def main() -> int:
    pins = resolve()
    python = ".".join(map(str, sys.version_info[:3]))
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    CONSTRAINTS.write_text(HEADER.format(python=python) + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"{CONSTRAINTS.name}: {len(lines)} packages pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
