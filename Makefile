# Clacks: `make serve` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clacks

.PHONY: install prepare serve test test-sqlite test-postgres migrate bench clean browser-deps backup restore-check

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

# DEBUG is off unless asked for (`DEBUG=1 make serve`): a 404 or an error shows the
# project's own page, never a route list or a traceback. Static files come from
# collectstatic through whitenoise; the key is the one bin/prepare keeps under var/
# unless SECRET_KEY or SECRET_KEY_FILE is set; cookies go over this plain-HTTP
# loopback address, so they are not marked Secure unless the environment says so.
SERVE_ENV = DEBUG=$${DEBUG:-False} \
	SECRET_KEY_FILE=$${SECRET_KEY_FILE:-$(if $(SECRET_KEY),,$(or $(CLACKS_VAR_DIR),var)/secret_key)} \
	SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-False} CSRF_COOKIE_SECURE=$${CSRF_COOKIE_SECURE:-False}

serve: migrate
	$(SERVE_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(SERVE_ENV) $(BIN)/gunicorn --config config/gunicorn.py --bind 127.0.0.1:$(PORT) config.wsgi

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

# tests/browser drives Debian's Chromium through Playwright; install it when missing.
browser-deps:
	test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .hypothesis
