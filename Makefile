# Clacks: `make serve` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clacks

.PHONY: install serve test test-sqlite test-postgres migrate bench clean browser-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

serve: migrate
	$(BIN)/gunicorn --config config/gunicorn.py --bind 127.0.0.1:$(PORT) config.wsgi

test: install browser-deps
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: install
	DATABASE_URL= $(BIN)/pytest

test-postgres: install
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest

# tests/browser drives Debian's Chromium through Playwright; install it when missing.
browser-deps:
	test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .hypothesis
