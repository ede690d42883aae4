"""Database connection metrics for /metrics: this server's connections, PostgreSQL's
headroom, and the replica's lag (README, Metrics).

Django opens one connection per thread and database alias and keeps it for
CONN_MAX_AGE; there is no pool to ask, so each thread records the state of its
own connections when a request starts and ends and when it connects, and the
gauges are the sums over the process's threads. Under gunicorn every worker
writes its own values (PROMETHEUS_MULTIPROC_DIR): `clacks_db_connections` sums
the live workers, `clacks_db_process_connections` keeps one series per worker
(the `pid` label).
"""

from __future__ import annotations

import threading

from django.core.signals import request_finished, request_started
from django.db import DatabaseError, connections
from django.db.backends.signals import connection_created
from prometheus_client import Gauge, Histogram

from telemetry import replicas

_STATES = ("open", "in_use", "idle")
CONNECTIONS = Gauge(
    "clacks_db_connections",
    "Database connections held by this server's processes, by alias and state (open = in_use + idle).",
    ["alias", "state"],
    multiprocess_mode="livesum",
)
PROCESS_CONNECTIONS = Gauge(
    "clacks_db_process_connections",
    "Database connections held by one process, by alias and state (one series per gunicorn worker).",
    ["alias", "state"],
    multiprocess_mode="liveall",
)
CONNECTION_WAIT = Histogram(
    "clacks_db_connection_wait_seconds",
    "Time a thread waited to get a database connection, counted each time it had to open one "
    "(a kept connection is reused at once).",
    ["alias"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

POSTGRES_MAX_CONNECTIONS = Gauge(
    "clacks_postgres_max_connections",
    "PostgreSQL's max_connections less superuser_reserved_connections: what clients may use.",
    multiprocess_mode="mostrecent",
)
POSTGRES_CONNECTIONS = Gauge(
    "clacks_postgres_connections",
    "Client connections to the PostgreSQL server (every database and client, from pg_stat_activity), by state.",
    ["state"],
    multiprocess_mode="mostrecent",
)
POSTGRES_HEADROOM = Gauge(
    "clacks_postgres_connections_headroom",
    "Connections PostgreSQL would still accept: clacks_postgres_max_connections minus those open.",
    multiprocess_mode="mostrecent",
)

# Labelled by alias so that they have no sample at all without DATABASE_REPLICA_URL
# (an alert on clacks_db_replica_up == 0 then stays quiet).
REPLICA_LAG = Gauge(
    "clacks_db_replica_lag_seconds",
    "How far the read replica is behind the primary (-1 while it does not answer).",
    ["alias"],
    multiprocess_mode="mostrecent",
)
REPLICA_UP = Gauge(
    "clacks_db_replica_up",
    "1 while the read replica answers and lags at most CLACKS_REPLICA_MAX_LAG (reads go to it), else 0.",
    ["alias"],
    multiprocess_mode="mostrecent",
)

# thread id -> alias -> (open, in use), as each thread last saw its own connections.
_threads: dict[int, dict[str, tuple[bool, bool]]] = {}
_lock = threading.Lock()
_local = threading.local()


def _record(*, serving: bool) -> None:
    seen = {}
    for alias in connections:
        wrapper = connections[alias]
        is_open = getattr(wrapper, "connection", None) is not None
        seen[alias] = (is_open, is_open and (serving or wrapper.in_atomic_block))
    with _lock:
        _threads[threading.get_ident()] = seen
        alive = {thread.ident for thread in threading.enumerate()}
        for ident in [ident for ident in _threads if ident not in alive]:
            del _threads[ident]  # a finished thread's connections went with it
        totals = {(alias, state): 0 for states in _threads.values() for alias in states for state in _STATES}
        for states in _threads.values():
            for alias, (is_open, in_use) in states.items():
                totals[(alias, "open")] += is_open
                totals[(alias, "in_use")] += in_use
                totals[(alias, "idle")] += is_open and not in_use
    for (alias, state), count in totals.items():
        CONNECTIONS.labels(alias=alias, state=state).set(count)
        PROCESS_CONNECTIONS.labels(alias=alias, state=state).set(count)


def _serving() -> bool:
    return getattr(_local, "serving", False)


def _request_started(**kwargs) -> None:
    _local.serving = True
    _record(serving=True)


def _request_finished(**kwargs) -> None:
    # Connected after Django's close_old_connections, so a connection it closed counts as closed.
    _local.serving = False
    _record(serving=False)


def _connection_created(**kwargs) -> None:
    _record(serving=_serving())


def connected(alias: str, seconds: float) -> None:
    """Called by the PostgreSQL backend (config/db/postgresql) after each connect."""
    CONNECTION_WAIT.labels(alias=alias).observe(seconds)


def connect_signals() -> None:
    request_started.connect(_request_started, dispatch_uid="clacks_db_connections_started")
    request_finished.connect(_request_finished, dispatch_uid="clacks_db_connections_finished")
    connection_created.connect(_connection_created, dispatch_uid="clacks_db_connections_created")


_SERVER_SQL = """
    SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int,
           coalesce(state, 'unknown'), count(*) FILTER (WHERE backend_type = 'client backend')
    FROM pg_stat_activity GROUP BY 1, 2
"""


def observe() -> None:
    """On each scrape (telemetry.metrics): this thread's connections, PostgreSQL's
    connection headroom, the replica's lag."""
    _record(serving=_serving())
    if connections["default"].vendor == "postgresql":
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(_SERVER_SQL)
                rows = cursor.fetchall()
        except DatabaseError:
            rows = None  # /health says why; the other metrics still export
        if rows:
            usable = rows[0][0]
            by_state = {state: count for _, state, count in rows}
            for state in ("active", "idle", "idle in transaction", "idle in transaction (aborted)"):
                POSTGRES_CONNECTIONS.labels(state=state).set(by_state.pop(state, 0))
            POSTGRES_CONNECTIONS.labels(state="other").set(sum(by_state.values()))
            POSTGRES_MAX_CONNECTIONS.set(usable)
            POSTGRES_HEADROOM.set(usable - sum(count for _, _, count in rows))
    state = replicas.state()
    if state is not None:
        REPLICA_UP.labels(alias=replicas.REPLICA).set(1 if state.usable else 0)
        REPLICA_LAG.labels(alias=replicas.REPLICA).set(state.lag_seconds if state.lag_seconds is not None else -1)
