# Two commands on a fresh machine with Python 3.11: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run dev test clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## Export today's partition of every deanery against the embedded MongoDB stand-in (or ESR_MONGODB_URI).
run: $(INSTALLED)
	$(BIN)/esr-export-local run

## The Dagster UI on http://127.0.0.1:3000 with the schedule running, for backfills.
dev: $(INSTALLED)
	$(BIN)/esr-export-local dev

## Install what the tests need and run them all.
test: $(INSTALLED)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .local
