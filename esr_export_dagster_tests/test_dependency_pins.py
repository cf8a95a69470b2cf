"""constraints.txt pins every dependency, direct and transitive, that the project and its test extra pull in."""

from __future__ import annotations

import re
from importlib import metadata

from packaging.requirements import Requirement

from .conftest import PROJECT_ROOT

CONSTRAINTS = PROJECT_ROOT / "constraints.txt"
PROJECT = "esr-export-dagster"


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    pinned = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pinned[normalised(name)] = version
    return pinned


def installed_closure(name: str, extras: frozenset[str]) -> set[str]:
    """Every distribution ``name[extras]`` needs in this environment, followed through their requirements."""
    needed: set[str] = set()
    pending = [(name, extras)]
    while pending:
        current, wanted = pending.pop()
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            applies = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in (wanted or {""})
            )
            if not applies:
                continue
            dependency = normalised(requirement.name)
            if dependency == PROJECT:  # the test extra names the local one: follow it
                pending.append((PROJECT, frozenset(requirement.extras)))
            elif dependency not in needed:
                needed.add(dependency)
                pending.append((dependency, frozenset(requirement.extras)))
    return needed


def test_every_dependency_of_the_project_and_its_test_extra_is_pinned_at_the_installed_version():
    pinned = pins()
    needed = installed_closure(PROJECT, frozenset({"test"}))

    assert needed - set(pinned) == set(), "not pinned in constraints.txt (run `make constraints`)"
    drifted = {
        name: (pinned[name], metadata.version(name)) for name in needed if metadata.version(name) != pinned[name]
    }
    assert drifted == {}, "installed versions differ from constraints.txt (pinned, installed); `make test` reinstalls"


def test_the_constraints_pin_pip_itself_so_the_upgrade_step_is_reproducible():
    assert "pip" in pins()
