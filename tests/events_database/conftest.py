"""These tests check a run with events on a database of their own: they are collected
only by `make test-events-database` (pytest -p tests.topology --topology=events)."""

import os

if not os.getenv("EVENTS_DATABASE_URL"):
    collect_ignore_glob = ["test_*.py"]
