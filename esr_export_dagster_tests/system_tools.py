"""Where the system tools the tests start are: on PATH, else where Debian installs them.

A root shell's PATH does not always hold the sbin directories (runuser, sshd), and Debian keeps PostgreSQL's
initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, never on PATH. Looking only on PATH made every
daemon scenario error at setup from such a shell; these helpers look in the usual places too, and a tool
found nowhere is reported by name with every place that was searched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

SYSTEM_DIRECTORIES = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
POSTGRES_VERSIONS = Path("/usr/lib/postgresql")


class ToolNotFound(RuntimeError):
    pass


def postgres_directories(versions_root: Path = POSTGRES_VERSIONS) -> list[str]:
    """Debian's PostgreSQL bin directories, the newest version first."""

    def version(bin_dir: Path) -> int:
        name = bin_dir.parent.name
        return int(name) if name.isdigit() else 0

    return [str(d) for d in sorted(versions_root.glob("*/bin"), key=version, reverse=True)]


def search_path(extra: Iterable[str] = ()) -> list[str]:
    """PATH first (the developer's choice wins), then the system directories, then ``extra``."""
    on_path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    ordered: list[str] = []
    for directory in [*on_path, *SYSTEM_DIRECTORIES, *extra]:
        if directory not in ordered:
            ordered.append(directory)
    return ordered


def find_tool(*names: str, extra: Iterable[str] = ()) -> str | None:
    """The first of ``names`` found in ``search_path(extra)``, as an absolute path; None if none is."""
    directories = os.pathsep.join(search_path(extra))
    for name in names:
        found = shutil.which(name, path=directories)
        if found:
            return str(Path(found).absolute())
    return None


def require_tool(*names: str, extra: Iterable[str] = (), install_hint: str = "") -> str:
    found = find_tool(*names, extra=extra)
    if found is None:
        searched = ":".join(search_path(extra))
        hint = f" ({install_hint})" if install_hint else ""
        raise ToolNotFound(f"{' or '.join(names)} is not installed{hint}: looked in {searched}")
    return found


def chromium() -> str | None:
    """Debian's Chromium (the browser test drives it; it never downloads a browser)."""
    return find_tool("chromium", "chromium-browser", extra=["/usr/lib/chromium"])


def sshd() -> str | None:
    return find_tool("sshd")


def postgres_bin_dir() -> Path | None:
    """The directory holding both initdb and pg_ctl: on PATH or the system directories, else the newest
    Debian version's."""
    for directory in search_path(postgres_directories()):
        if all(os.access(Path(directory) / tool, os.X_OK) for tool in ("initdb", "pg_ctl")):
            # A link on PATH (/usr/local/bin/initdb, say) stands for the version directory it points into.
            return (Path(directory) / "initdb").resolve().parent
    return None
