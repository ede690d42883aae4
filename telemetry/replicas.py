"""Reads of event data from a streaming replica (DATABASE_REPLICA_URL), and its health.

docs/replicas.md explains the rules; in short:

- Only GET and HEAD requests (the dashboard's pages, later the API's reads)
  read from the replica, and only the tables of the `telemetry` app (events
  and what is derived from them). Accounts, sessions, organizations, apps,
  funnels and alert rules are always read from the primary: a page shown
  right after a form was saved must show what was saved.
- Once a request writes (through the ORM or raw SQL on the primary), the
  rest of it reads the primary: a page that rebuilt a day's rollups reads
  the rebuilt rows.
- The replica is used while it answers and is at most CLACKS_REPLICA_MAX_LAG
  seconds behind; each process checks that at most every
  CLACKS_REPLICA_CHECK_SECONDS. Otherwise reads go to the primary and
  /health says why ("lagging" or "down"), without answering 503: the
  primary serves everything on its own.
- Writes, ingest, the scheduler's jobs and management commands never touch it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections, router
from django.http import HttpRequest, HttpResponse

from telemetry.databases import EVENTS

REPLICA = "replica"
# App labels whose tables are read from the replica (event data, derived tables).
_ROUTED_APPS = frozenset({"telemetry"})

# Lag of a hot standby: 0 while it has replayed all it received, else the age of
# the last transaction it replayed (an overestimate after the primary was idle,
# which only sends reads to the primary a little sooner).
_LAG_SQL = """
    SELECT CASE
        WHEN NOT pg_is_in_recovery() THEN 0
        WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
        ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)
    END
"""


@dataclass(frozen=True)
class ReplicaState:
    status: str  # "up", "lagging" (more than CLACKS_REPLICA_MAX_LAG behind) or "down"
    lag_seconds: float | None  # None when down
    checked_at: float  # time.monotonic() of the check
    error: str | None = None  # the exception's class name when down

    @property
    def usable(self) -> bool:
        return self.status == "up"

    def as_json(self) -> dict:
        body: dict = {"status": self.status, "reads_from": REPLICA if self.usable else EVENTS}
        if self.lag_seconds is not None:
            body["lag_seconds"] = round(self.lag_seconds, 3)
        body["max_lag_seconds"] = settings.CLACKS_REPLICA_MAX_LAG
        if self.error:
            body["error"] = self.error
        return body


_state: ReplicaState | None = None
_check_lock = threading.Lock()


def configured() -> bool:
    return REPLICA in settings.DATABASES


def state(*, fresh: bool = False) -> ReplicaState | None:
    """The replica's state, checked at most every CLACKS_REPLICA_CHECK_SECONDS per
    process (`fresh`: check now); None when no replica is configured."""
    global _state
    if not configured():
        return None
    current = _state
    if not fresh and current is not None and time.monotonic() - current.checked_at < settings.CLACKS_REPLICA_CHECK_SECONDS:
        return current
    with _check_lock:
        current = _state
        if not fresh and current is not None and time.monotonic() - current.checked_at < settings.CLACKS_REPLICA_CHECK_SECONDS:
            return current  # another thread checked while this one waited
        _state = _check()
        return _state


def _check() -> ReplicaState:
    replica = connections[REPLICA]
    try:
        with replica.cursor() as cursor:
            cursor.execute(_LAG_SQL)
            lag = float(cursor.fetchone()[0])
    except DatabaseError as exc:
        try:
            replica.close()  # reconnect on the next check rather than reuse a broken link
        except DatabaseError:
            pass
        return ReplicaState("down", None, time.monotonic(), exc.__class__.__name__)
    status = "up" if lag <= settings.CLACKS_REPLICA_MAX_LAG else "lagging"
    return ReplicaState(status, max(lag, 0.0), time.monotonic())


def forget_state() -> None:
    """Drop the cached check (tests, and after the replica's URL changed)."""
    global _state
    _state = None


# --- Which requests may read the replica ------------------------------------------


# Statements that write, as raw SQL sends them to the primary (telemetry.storage
# builds rollups while a page is shown); the ORM's writes reach db_for_write.
_WRITES = re.compile(r"\s*(WITH\b.*\b(INSERT|UPDATE|DELETE)\b|INSERT|UPDATE|DELETE|MERGE|COPY|TRUNCATE)\b", re.I | re.S)


class _RequestReads:
    """One request's permission to read the replica; taken back by its first write."""

    __slots__ = ("wrote",)

    def __init__(self) -> None:
        self.wrote = False

    def watch(self, execute, sql, params, many, context):
        """An execute wrapper on the primary: a write ends the request's replica reads."""
        if not self.wrote and _WRITES.match(sql):
            self.wrote = True
        return execute(sql, params, many, context)


_request_reads: ContextVar[_RequestReads | None] = ContextVar("clacks_replica_reads", default=None)


def middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Let GET and HEAD requests read event data from the replica (settings add it
    to MIDDLEWARE when DATABASE_REPLICA_URL is set)."""

    def replica_reads(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return get_response(request)
        reads = _RequestReads()
        token = _request_reads.set(reads)
        try:
            # Raw SQL writing event data runs on the events' primary (which is
            # DATABASE_URL's server unless EVENTS_DATABASE_URL is set).
            with connections[EVENTS].execute_wrapper(reads.watch):
                return get_response(request)
        finally:
            _request_reads.reset(token)

    return replica_reads


class ReplicaRouter:
    """DATABASE_ROUTERS entry when DATABASE_REPLICA_URL is set (see the module's docstring)."""

    def db_for_read(self, model, **hints) -> str | None:
        reads = _request_reads.get()
        if reads is None or reads.wrote or model._meta.app_label not in _ROUTED_APPS:
            return None
        current = state()
        return REPLICA if current is not None and current.usable else None

    def db_for_write(self, model, **hints) -> str | None:
        reads = _request_reads.get()
        if reads is not None:
            reads.wrote = True  # read-after-write: the rest of the request reads the primary
        return None

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        return False if db == REPLICA else None


def read_connection(model):
    """The connection raw SQL reading `model`'s table should use: the replica's when
    the router would send the ORM there (dashboard queries that bypass the ORM)."""
    return connections[router.db_for_read(model)]
