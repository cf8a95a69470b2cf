"""Dagster's filesystem pickle IO manager, able to store the output of a run that covers many partitions.

A backfill runs many (date, deanery) partitions in one run (``BackfillPolicy.single_run``). The stock
filesystem IO manager refuses such outputs; this one accepts a mapping keyed by exactly the run's partition
keys and stores each value where a one-partition run would have stored it, so later runs, the UI and
downstream assets see one value per partition either way.
"""

from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableIOManagerFactory, DagsterInvariantViolationError, InitResourceContext, OutputContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from pydantic import Field


class PartitionPickleIOManager(PickledObjectFilesystemIOManager):
    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions or not _keyed_by_partition(context, obj):
            if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
                raise DagsterInvariantViolationError(
                    f"{context.asset_key.to_user_string()}: a run over {len(context.asset_partition_keys)} "
                    "partitions must return a mapping of partition key to value"
                )
            super().handle_output(context, obj)
            return
        # The stock manager's own path layout, so one-partition and many-partition runs agree.
        paths = self._get_paths_for_partitions(context)
        for partition_key, path in paths.items():
            self.make_directory(path.parent)
            self.dump_to_path(context=context, obj=obj[partition_key], path=path)
        # Logged, not metadata: metadata here would be copied onto every partition's materialization.
        context.log.debug(f"{context.asset_key.to_user_string()}: stored {len(paths)} partition values")


def _keyed_by_partition(context: OutputContext, obj: Any) -> bool:
    return isinstance(obj, Mapping) and set(obj) == {str(key) for key in context.asset_partition_keys}


class ExportIOManager(ConfigurableIOManagerFactory):
    """Pickles outputs under Dagster's storage directory (or ``base_dir``), one file per partition."""

    base_dir: str | None = Field(default=None, description="Defaults to the instance's storage directory.")

    def create_io_manager(self, context: InitResourceContext) -> PartitionPickleIOManager:
        base_dir = self.base_dir or context.instance.storage_directory()  # type: ignore[union-attr]
        return PartitionPickleIOManager(base_dir=str(base_dir))
