"""django-prometheus' PostgreSQL backend, plus the time each new connection took
(clacks_db_connection_wait_seconds, telemetry/dbmetrics.py), and a database made
without foreign keys when its settings say so (the events server: its tables
refer to apps that live on another server; docs/events-database.md)."""

from __future__ import annotations

import time

from django_prometheus.db.backends.postgresql import base

from telemetry import dbmetrics


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, settings_dict, *args, **kwargs):
        super().__init__(settings_dict, *args, **kwargs)
        if settings_dict.get("CLACKS_NO_FOREIGN_KEYS"):
            # Migrations then create no FOREIGN KEY constraint here (Django's schema
            # editor asks this before each one; telemetry.partitions asks too).
            self.features.supports_foreign_keys = False

    def get_new_connection(self, conn_params):
        started = time.perf_counter()
        try:
            return super().get_new_connection(conn_params)
        finally:
            dbmetrics.connected(self.alias, time.perf_counter() - started)
