# Clacks: `make serve` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
CHECKOV := .venv-checkov/bin/checkov
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clacks

.PHONY: install prepare serve test test-sqlite test-postgres test-image migrate bench clean browser-deps backup restore-check

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
test: prepare browser-deps $(CHECKOV)
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) test-sqlite
	$(MAKE) test-postgres
	$(MAKE) test-image

# checkov checks docker/kubernetes/ in the tests (tests/operations/test_kubernetes.py).
# It lives in a virtualenv of its own: its pins (packaging<24, boto3, networkx<2.7)
# conflict with the test extra's pytest.
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet "checkov>=3.2,<4"

# docker/Dockerfile built and run with podman against TEST_DATABASE_URL's server
# (bin/test-image; README, Operations, "The image, tested"). It installs podman
# when missing; if it cannot, it says so in a banner and passes, unless
# CLACKS_REQUIRE_IMAGE_TEST=1.
test-image: prepare
	BIN=$(BIN) TEST_DATABASE_URL=$(TEST_DATABASE_URL) bin/test-image

test-sqlite: prepare $(CHECKOV)
	DATABASE_URL= $(BIN)/pytest

test-postgres: prepare $(CHECKOV)
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
	rm -rf $(VENV) .venv-checkov staticfiles .pytest_cache .hypothesis
