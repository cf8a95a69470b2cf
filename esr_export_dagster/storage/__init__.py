"""MongoDB and file-system side of the export: plain pymongo and os, no Dagster."""
