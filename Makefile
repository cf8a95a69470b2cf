# Two commands on a fresh machine with Python 3.11: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run dev test test-steps constraints definitions-snapshot browser postgres sshd clean

# Every package at the version constraints.txt pins (direct and transitive): the same set on every machine,
# in CI and in the image. `make constraints` refreshes it.
$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

## Export today's partition of every deanery against the embedded MongoDB stand-in (or ESR_MONGODB_URI).
run: $(INSTALLED)
	$(BIN)/esr-export-local run

## The Dagster UI on http://127.0.0.1:3000 with the schedule running, for backfills.
dev: $(INSTALLED)
	$(BIN)/esr-export-local dev

## Install what the tests need, check lint and formatting, and run the tests in parallel workers; prints how
## long all of it took. `make test TEST_WORKERS=0` runs the tests in one process.
test:
	@started=$$(date +%s); status=0; \
	$(MAKE) --no-print-directory test-steps || status=$$?; \
	echo "make test: $$(( $$(date +%s) - started )) s (tests in $(TEST_WORKERS) workers)"; \
	exit $$status

# Three workers on the 2-core machines: the daemon scenarios spend most of their time waiting for the
# schedule's tick or for run workers to start, and the third worker uses that time.
TEST_WORKERS ?= 3
test-steps: $(INSTALLED) browser postgres sshd
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

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

## Re-resolve every dependency to the newest versions pyproject.toml allows and pin them all in constraints.txt
## (after changing a dependency in pyproject.toml, or to take upgrades); commit the result.
## Runs on the system Python, not the venv: a pin the new pyproject.toml rules out would stop the venv installing.
constraints:
	$(PYTHON) tools/refresh_constraints.py

## Rewrite esr_export_dagster_tests/golden/definitions.yaml from the definitions as they are now, after a change
## to assets, partitions, policies, checks, jobs, schedules or sensors that is meant; commit it with the change.
definitions-snapshot: $(INSTALLED)
	$(BIN)/python -m esr_export_dagster_tests.definitions_snapshot --write

clean:
	rm -rf $(VENV) .local
