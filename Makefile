# Two commands on a fresh machine with Python 3.11: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run dev test browser postgres sshd clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## Export today's partition of every deanery against the embedded MongoDB stand-in (or ESR_MONGODB_URI).
run: $(INSTALLED)
	$(BIN)/esr-export-local run

## The Dagster UI on http://127.0.0.1:3000 with the schedule running, for backfills.
dev: $(INSTALLED)
	$(BIN)/esr-export-local dev

## Install what the tests need, check lint and formatting, and run the tests.
test: $(INSTALLED) browser postgres sshd
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

## Debian's Chromium for the browser test (Playwright drives it; no browser download). Needs root.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "Chromium is not installed and this is not root: the browser test will be skipped"; fi

## Debian's PostgreSQL for the production-instance daemon tests (a throwaway cluster per session; apt starts
## none). Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH. Needs root.
postgres:
	@if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then :; \
	elif ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL is not installed and this is not root: the production daemon tests will be skipped"; fi

## Debian's OpenSSH server for the SFTP delivery tests (each session runs its own sshd on a loopback port
## with throwaway keys; apt starts none here, and the system's sshd is never used). Needs root.
sshd:
	@if command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; \
	else echo "OpenSSH's sshd is not installed and this is not root: the SFTP delivery tests will be skipped"; fi

clean:
	rm -rf $(VENV) .local
