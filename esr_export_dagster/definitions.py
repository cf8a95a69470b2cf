"""Everything the code location serves, assembled in one place. Nothing here does I/O."""

from __future__ import annotations

import os
from typing import Mapping

from dagster import ConfigurableResource, Definitions, EnvVar

from .assets import app_export_file, app_record_selection
from .jobs import daily_app_export_job
from .resources import ExportDirectoryResource, ExportPolicyResource, MongoDBResource
from .schedules import daily_app_export_schedule


def _env_or_default(name: str, default: str) -> EnvVar | str:
    """An optional setting: read from the environment at run time when set, else the default."""
    return EnvVar(name) if name in os.environ else default


def default_resources() -> dict[str, ConfigurableResource]:
    return {
        "mongodb": MongoDBResource(
            uri=EnvVar("ESR_MONGODB_URI"),
            database=_env_or_default("ESR_MONGODB_DATABASE", "esr_export"),
        ),
        "export_directory": ExportDirectoryResource(path=EnvVar("ESR_EXPORT_DIR")),
        "export_policy": ExportPolicyResource(),
    }


def build_definitions(resources: Mapping[str, ConfigurableResource]) -> Definitions:
    """The code location's contents with the given resources (tests point them at their own server)."""
    return Definitions(
        assets=[app_record_selection, app_export_file],
        jobs=[daily_app_export_job],
        schedules=[daily_app_export_schedule],
        resources=dict(resources),
    )


defs = build_definitions(default_resources())
