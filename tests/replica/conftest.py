"""These tests need a real streaming replica: they are collected only by `make
test-replica` (pytest -p tests.topology --topology=replica), which makes one."""

import os

if not os.getenv("DATABASE_REPLICA_URL"):
    collect_ignore_glob = ["test_*.py"]
