"""These tests check the run itself goes through PgBouncer: they are collected only by
`make test-pgbouncer` (pytest -p tests.topology --topology=pgbouncer)."""

import os

if os.getenv("CLACKS_DB_POOLER") != "pgbouncer":
    collect_ignore_glob = ["test_*.py"]
