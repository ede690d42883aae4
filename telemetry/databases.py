"""Which database holds event data: DATABASE_URL's, or EVENTS_DATABASE_URL's when set.

docs/events-database.md explains the layout; in short:

- The `telemetry` app's tables (events, everything derived from them, the
  nonce store, the rate and quota counters, plans and the scheduler's jobs)
  live on the database alias `EVENTS`: "events" when EVENTS_DATABASE_URL is
  set, else "default". Accounts, organizations, apps, credentials, alert
  rules, funnels and share links stay on "default".
- Raw SQL on event tables goes through `events_connection` and transactions
  around it through `events_atomic()`; the ORM follows `EventsRouter`.
- Nothing joins across the two: code that needs apps and events reads the
  apps first and filters events by their ids.
- There are no foreign keys between the servers (the events server is made
  without any, config/db/postgresql/base.py); deleting an app deletes its
  events through telemetry.storage.delete_app_events, and `cascade_on_same_server`
  keeps Django's cascade where both sides share one database.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.utils.connection import ConnectionProxy

EVENTS_ALIAS = "events"
# App labels whose tables live with the events.
EVENT_APPS = frozenset({"telemetry"})


def split() -> bool:
    """Whether event data has a database of its own (EVENTS_DATABASE_URL)."""
    return EVENTS_ALIAS in settings.DATABASES


# Decided once, when the settings are read: the alias of the event tables.
EVENTS = EVENTS_ALIAS if split() else DEFAULT_DB_ALIAS

# `django.db.connection`, for the event tables' server.
events_connection = ConnectionProxy(connections, EVENTS)


def events_atomic(savepoint: bool = True, durable: bool = False):
    """`transaction.atomic` on the event tables' database."""
    return transaction.atomic(using=EVENTS, savepoint=savepoint, durable=durable)


def holds(model) -> str:
    """The alias of the database holding `model`'s table."""
    return EVENTS if model._meta.app_label in EVENT_APPS else DEFAULT_DB_ALIAS


def cascade_on_same_server(collector, field, sub_objs, using):
    """on_delete of event tables' references to apps and organizations: Django's
    CASCADE while both live in one database, nothing when events have a server of
    their own (the rows there go first, through telemetry.storage; the queryset is
    never evaluated, so no query reaches a table that is not on `using`)."""
    if holds(field.model) == using:
        models.CASCADE(collector, field, sub_objs, using)


# Handed the queryset unevaluated: Django would otherwise run it to see whether it is empty.
cascade_on_same_server.lazy_sub_objs = True


class EventsRouter:
    """DATABASE_ROUTERS entry when EVENTS_DATABASE_URL is set."""

    def db_for_read(self, model, **hints) -> str:
        # Always an answer, never None: Django would otherwise follow the hint's
        # instance to its database (an event's app would be read on the events server).
        return holds(model)

    def db_for_write(self, model, **hints) -> str:
        return holds(model)

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        # An event may name its app by id across the servers (no join, no constraint).
        return True

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        if db not in (DEFAULT_DB_ALIAS, EVENTS_ALIAS):
            return None  # the replica says no for itself (telemetry.replicas)
        return (app_label in EVENT_APPS) == (db == EVENTS_ALIAS)
