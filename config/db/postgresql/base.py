"""django-prometheus' PostgreSQL backend, plus the time each new connection took
(clacks_db_connection_wait_seconds, telemetry/dbmetrics.py)."""

from __future__ import annotations

import time

from django_prometheus.db.backends.postgresql import base

from telemetry import dbmetrics


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        started = time.perf_counter()
        try:
            return super().get_new_connection(conn_params)
        finally:
            dbmetrics.connected(self.alias, time.perf_counter() - started)
