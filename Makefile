# Clacks: `make serve` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Exported so gunicorn, its scheduler and manage.py commands run by make know the
# port: without CLACKS_PUBLIC_URL, commands print http://127.0.0.1:$(PORT) (organizations/endpoints.py).
export PORT
STAMP := $(VENV)/.installed
CHECKOV := .venv-checkov/bin/checkov
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clacks

.PHONY: install prepare serve test test-sqlite test-postgres migrate bench clean browser-deps backup restore-check test-pgbouncer test-replica test-events-database topology-deps lighthouse test-image

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
	$(BIN)/python manage.py migrate_locked

# Served as in production, on plain http at 127.0.0.1 (README, "Quick start"), with
# gunicorn's scheduler on (config/gunicorn.py). DEBUG is off unless asked for
# (`DEBUG=1 make serve`): a 404 or an error shows the project's own page, never a
# route list or a traceback. Static files come from collectstatic through whitenoise;
# the key is the one bin/prepare keeps under var/ unless SECRET_KEY or SECRET_KEY_FILE
# is set; cookies go over this plain-HTTP loopback address, so they are not marked
# Secure unless the environment says so.
SERVE_ENV = DEBUG=$${DEBUG:-False} \
	SECRET_KEY_FILE=$${SECRET_KEY_FILE:-$(if $(SECRET_KEY),,$(or $(CLACKS_VAR_DIR),var)/secret_key)} \
	SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-False} CSRF_COOKIE_SECURE=$${CSRF_COOKIE_SECURE:-False}

serve: migrate
	$(SERVE_ENV) $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Clacks: open http://127.0.0.1:$(PORT)/ in a browser (DEBUG=$${DEBUG:-False}, background jobs: $${CLACKS_SCHEDULER:-on})"
	$(SERVE_ENV) $(BIN)/gunicorn --config config/gunicorn.py --bind 127.0.0.1:$(PORT) config.wsgi

# lint-imports checks the walls between the apps (pyproject.toml [tool.importlinter];
# README, "Layout") before any test runs.
test: prepare browser-deps $(CHECKOV)
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) test-sqlite
	$(MAKE) test-postgres
	$(MAKE) test-pgbouncer
	$(MAKE) test-replica
	$(MAKE) test-events-database

# checkov checks docker/kubernetes/ in the tests (tests/operations/test_kubernetes.py).
# It lives in a virtualenv of its own: its pins (packaging<24, boto3, networkx<2.7)
# conflict with the test extra's pytest.
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet "checkov>=3.2,<4"

# docker/Dockerfile built and run with podman against TEST_DATABASE_URL's server
# (bin/test-image; README, Operations, "The image, tested"). It installs podman
# when missing; if it cannot, it says so in a banner and passes, unless
# CLACKS_REQUIRE_IMAGE_TEST=1 (as .ci/run sets it).
test-image: prepare
	BIN=$(BIN) TEST_DATABASE_URL=$(TEST_DATABASE_URL) bin/test-image

test-sqlite: prepare $(CHECKOV)
	DATABASE_URL= $(BIN)/pytest

test-postgres: prepare $(CHECKOV)
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest

# The ingest contract, limits, the dashboard and the jobs through PgBouncer in transaction
# pooling mode, and the dashboard with a streaming replica; tests/topology.py starts the
# servers on free ports of TOPOLOGY_PORTS (README, "PgBouncer" and "Read replicas").
PGBOUNCER_TESTS ?= tests/pgbouncer tests/telemetry/test_ingest.py tests/telemetry/test_idempotency.py \
	tests/telemetry/test_batch_endpoint.py tests/telemetry/test_signature.py tests/limits \
	tests/dashboard/test_pages.py tests/telemetry/test_scheduler.py tests/operations/test_scheduler.py
test-pgbouncer: prepare topology-deps
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest -p tests.topology --topology=pgbouncer $(PGBOUNCER_TESTS)

test-replica: prepare topology-deps
	$(BIN)/python -m pytest -p tests.topology --topology=replica tests/replica

# Events in a database of their own (EVENTS_DATABASE_URL: TEST_DATABASE_URL's name
# with "_events"): the contract, limits, the dashboard, the API, erasure, app
# deletion and the jobs (README, "Events on a server of their own").
EVENTS_DATABASE_TESTS ?= tests/events_database tests/telemetry/test_ingest.py tests/telemetry/test_idempotency.py \
	tests/telemetry/test_batch_endpoint.py tests/telemetry/test_signature.py tests/limits \
	tests/dashboard/test_pages.py tests/insights tests/api tests/lifecycle tests/organizations/test_apps.py \
	tests/telemetry/test_scheduler.py
test-events-database: prepare
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m pytest -p tests.topology --topology=events $(EVENTS_DATABASE_TESTS) \
		--ignore=tests/limits/test_two_instances.py

topology-deps:
	command -v pgbouncer >/dev/null || { apt-get update -q && apt-get install -y -q pgbouncer; }

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
	rm -rf $(VENV) .venv-checkov staticfiles .pytest_cache .hypothesis tests/browser/node_modules bench/lighthouse/node_modules
