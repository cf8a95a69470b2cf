"""A readable snapshot of what the code location serves: asset keys, partitions, backfill and retry policies,
checks, jobs, schedules, sensors and their tags, as YAML. test_definitions_snapshot.py compares it with
golden/definitions.yaml, so any change shows as one diff.

Refresh the golden file, after a change that is meant, with `make definitions-snapshot` (this module with
``--write``), and commit it with the change; the test never rewrites it.

Built from Dagster's public API only, in a process of its own without the caller's ESR_ and DAGSTER_
settings, so that the developer's environment cannot leak into it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

GOLDEN = Path(__file__).resolve().parent / "golden" / "definitions.yaml"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _lines(value: Any) -> list[str] | None:
    """A multi-line description (a partitions definition's) as its lines, for a diff that points at one."""
    return None if value is None else [line.strip() for line in str(value).splitlines() if line.strip()]


def _tags(tags: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in sorted((tags or {}).items())}


def _dep(dep: Any) -> str:
    """The upstream asset, and the partition mapping where one is declared (none: Dagster's default)."""
    key = dep.asset_key.to_user_string()
    return key if dep.partition_mapping is None else f"{key} via {dep.partition_mapping!r}"


def snapshot() -> dict[str, Any]:
    from esr_export_dagster.definitions import defs

    assets = {}
    for key in sorted(defs.resolve_all_asset_keys(), key=lambda k: k.to_user_string()):
        definition = defs.resolve_assets_def(key)
        (spec,) = [s for s in definition.specs if s.key == key]
        assets[key.to_user_string()] = {
            "group": spec.group_name,
            "deps": sorted(_dep(dep) for dep in spec.deps),
            "partitions": _lines(definition.partitions_def),
            "backfill_policy": _text(definition.backfill_policy),
            "automation_condition": _text(spec.automation_condition),
            "kinds": sorted(spec.kinds),
            "owners": sorted(spec.owners),
            "tags": _tags(spec.tags),
        }
    checks = sorted(
        (
            {"asset": spec.asset_key.to_user_string(), "name": spec.name, "blocking": spec.blocking}
            for checks_def in defs.asset_checks
            for spec in checks_def.check_specs
        ),
        key=lambda check: (check["asset"], check["name"]),
    )
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job: the assets above already say it all
            continue
        jobs[job.name] = {
            "executor": job.executor_def.name,
            "partitioned": job.partitions_def is not None,
            "tags": _tags(job.tags),
            "run_tags": _tags(job.run_tags),
            "op_retry_policy": _text(job.op_retry_policy),
            "ops": {
                node.name: {
                    "retry_policy": _text(getattr(node, "retry_policy", None)),
                    "pool": getattr(node, "pool", None),
                    "tags": _tags(node.tags),
                }
                for node in sorted(job.all_node_defs, key=lambda n: n.name)
            },
        }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value,
            "job": schedule.job_name,
            "tags": _tags(schedule.tags),
        }
        for schedule in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {
            "type": type(sensor).__name__,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
            "jobs": sorted(job.name for job in sensor.jobs) if sensor.has_jobs else [],
            "tags": _tags(getattr(sensor, "tags", None)),
        }
        for sensor in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
    }


def render() -> str:
    return yaml.safe_dump(snapshot(), sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)


def render_in_clean_process() -> str:
    """``render()`` in a fresh interpreter without the caller's ESR_ and DAGSTER_ settings."""
    from .conftest import PROJECT_ROOT, isolated_env

    built = subprocess.run(
        [sys.executable, "-m", __spec__.name if __spec__ else "esr_export_dagster_tests.definitions_snapshot"],
        env=isolated_env(PYTHONPATH=str(PROJECT_ROOT), PYTHONWARNINGS="ignore"),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0:
        raise RuntimeError(f"building the definitions snapshot failed:\n{built.stderr[-3000:]}")
    return built.stdout


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        GOLDEN.write_text(render_in_clean_process(), encoding="utf-8")
        print(f"wrote {GOLDEN}")
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
