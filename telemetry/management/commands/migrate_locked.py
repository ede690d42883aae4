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

Without --database it migrates every database Clacks writes: DATABASE_URL's,
then EVENTS_DATABASE_URL's when events have a server of their own (one lock,
taken on the first, covers both; docs/events-database.md).
"""

from __future__ import annotations

import logging
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from telemetry import databases

logger = logging.getLogger("clacks.migrate")

# Any constant shared by every instance; "clacks migrate" in ASCII, cut to 63 bits.
LOCK_KEY = 0x636C61636B73206D
POLL_SECONDS = 1.0


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
        parser.add_argument("--database", help="one database alias (default: every one Clacks writes)")

    def handle(self, *, database: str | None, verbosity: int, **options) -> None:
        aliases = [database] if database else [DEFAULT_DB_ALIAS] + ([databases.EVENTS] if databases.split() else [])
        if connections[aliases[0]].vendor != "postgresql":
            for alias in aliases:
                self.migrate(alias, verbosity, waited=0.0)
            return
        # A connection of its own: the lock's transaction stays open while
        # migrate commits (and may close) the usual one.
        holder = connections.create_connection(aliases[0])
        try:
            holder.set_autocommit(False)
            waited = self.take_lock(holder)
            for alias in aliases:
                self.migrate(alias, verbosity, waited=waited)
        finally:
            holder.rollback()  # ends the transaction, and so releases the lock
            holder.close()

    def take_lock(self, holder) -> float:
        """Take the lock in `holder`'s open transaction; the seconds it took.

        A waiting instance asks again every second rather than blocking in
        pg_advisory_xact_lock: a statement waiting inside PostgreSQL holds a
        snapshot, and CREATE INDEX CONCURRENTLY in the other instance's migrations
        waits for every older snapshot to go, so both would wait for ever. The
        holder, idle in its transaction between statements, holds none."""
        started = time.monotonic()
        logged = False
        while True:
            with holder.cursor() as cursor:
                # The key written in: a statement without parameters goes by the simple
                # query protocol, which leaves no snapshot behind (a bound one may keep its
                # portal's, which CREATE INDEX CONCURRENTLY would wait for too).
                cursor.execute(f"SELECT pg_try_advisory_xact_lock({LOCK_KEY:d})")
                if cursor.fetchone()[0]:
                    return time.monotonic() - started
            holder.rollback()  # no transaction, no snapshot while waiting
            if not logged:
                logger.info("another instance is applying migrations; waiting for the migration lock")
                logged = True
            time.sleep(POLL_SECONDS)

    def migrate(self, database: str, verbosity: int, *, waited: float) -> None:
        pending = pending_migrations(database)
        if not pending:
            logger.info("no migrations to apply (waited %.1f s for the migration lock)", waited)
            return
        call_command("migrate", database=database, interactive=False, verbosity=verbosity)
        logger.info("applied %d migrations (waited %.1f s for the migration lock)", pending, waited)
