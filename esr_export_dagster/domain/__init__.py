"""Pure domain rules of the ESR export: no Dagster, no MongoDB, no file system."""
