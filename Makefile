# Clacks: `make serve` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clacks

.PHONY: install prepare serve test test-sqlite test-postgres migrate bench clean browser-deps backup restore-check lighthouse

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# var/, the static root and, without SECRET_KEY, a development key in var/secret_key.
# Importing the settings writes nothing, so everything that starts Django runs this first.
prepare: install
	$(BIN)/python bin/prepare

migrate: prepare
	$(BIN)/python manage.py migrate --noinput

serve: migrate
	$(BIN)/gunicorn --config config/gunicorn.py --bind 127.0.0.1:$(PORT) config.wsgi

# lint-imports checks the walls between the apps (pyproject.toml [tool.importlinter];
# README, "Layout") before any test runs.
test: prepare browser-deps
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: prepare
	DATABASE_URL= $(BIN)/pytest

test-postgres: prepare
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest

# HTTP ingest against PostgreSQL's COPY rate in one run (README, Performance).
# The database must exist; gunicorn is started on BENCH_PORT for the run.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clacks_bench
BENCH_PORT ?= 8503
bench: prepare
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python manage.py migrate --noinput
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/compare.py --serve $(BENCH_PORT) --clients 8 --clients 32

# A backup of DATABASE_URL (default: the SQLite file) in var/backups; the oldest past 14 go.
backup: install
	$(BIN)/python bin/dbbackup backup

# Restore the newest backup into a scratch database and compare every table's row count.
restore-check: install
	$(BIN)/python bin/dbbackup check

# tests/browser drives Debian's Chromium through Playwright; install it when missing,
# and axe-core from npm (tests/browser/package.json), which the tests inject into every page.
browser-deps:
	test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q chromium; }
	command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q npm; }
	test -f tests/browser/node_modules/axe-core/axe.min.js || (cd tests/browser && npm ci --no-audit --no-fund)

# Lighthouse scores of every page, mobile preset, 10 k seeded events (bench/lighthouse.py).
LIGHTHOUSE_PORT ?= 8643
lighthouse: prepare browser-deps
	test -x bench/lighthouse/node_modules/.bin/lighthouse || (cd bench/lighthouse && npm ci --no-audit --no-fund)
	$(BIN)/python bench/lighthouse.py --port $(LIGHTHOUSE_PORT)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .hypothesis tests/browser/node_modules bench/lighthouse/node_modules
