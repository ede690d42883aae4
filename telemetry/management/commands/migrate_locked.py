"""`migrate`, once, however many containers start at the same moment.

Django's `migrate` is not safe to run twice at once: two instances starting
together (Compose `--scale`, a Deployment's pods) would both try to create the
same tables. On PostgreSQL this command first takes a transaction-level
advisory lock on a connection of its own and holds it, transaction open, while
the migrations run on Django's usual connection; a second instance waits for
it and then finds nothing left to apply. A transaction-level lock (not a
session one) keeps this working through PgBouncer in transaction pooling mode:
the open transaction pins the server connection that holds the lock. On SQLite
(one instance by nature) it is plain `migrate`. docker/entrypoint.sh and the
Kubernetes migrations Job run it (README, Operations).
"""

from __future__ import annotations

import logging
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

logger = logging.getLogger("clacks.migrate")

# Any constant shared by every instance; "clacks migrate" in ASCII, cut to 63 bits.
LOCK_KEY = 0x636C61636B73206D


def pending_migrations(alias: str = DEFAULT_DB_ALIAS) -> int:
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


class Command(BaseCommand):
    help = (
        "Apply pending migrations, holding a PostgreSQL advisory lock so that instances "
        "starting together apply them once (plain migrate on SQLite)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *, database: str, verbosity: int, **options) -> None:
        if connections[database].vendor != "postgresql":
            self.migrate(database, verbosity, waited=0.0)
            return
        # A connection of its own: the lock's transaction stays open while
        # migrate commits (and may close) the usual one.
        holder = connections.create_connection(database)
        try:
            holder.set_autocommit(False)
            with holder.cursor() as cursor:
                # Waiting for another instance's migrations may take longer than any query may.
                cursor.execute("SET LOCAL statement_timeout = 0")
                started = time.monotonic()
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
                if not cursor.fetchone()[0]:
                    logger.info("another instance is applying migrations; waiting for the migration lock")
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
                waited = time.monotonic() - started
            self.migrate(database, verbosity, waited=waited)
        finally:
            holder.rollback()  # ends the transaction, and so releases the lock
            holder.close()

    def migrate(self, database: str, verbosity: int, *, waited: float) -> None:
        pending = pending_migrations(database)
        if not pending:
            logger.info("no migrations to apply (waited %.1f s for the migration lock)", waited)
            return
        call_command("migrate", database=database, interactive=False, verbosity=verbosity)
        logger.info("applied %d migrations (waited %.1f s for the migration lock)", pending, waited)
