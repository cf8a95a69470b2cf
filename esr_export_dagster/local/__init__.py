"""Local set-up: the embedded MongoDB stand-in, demo records, and the `make run` / `make dev` entry points."""
