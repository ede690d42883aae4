"""Run tests against the database layouts operators use: PostgreSQL behind PgBouncer
in transaction pooling mode, a primary with a streaming replica, or events on a
database of their own.

A pytest plugin, loaded only by the Makefile's targets (`make test-pgbouncer`,
`make test-replica`, `make test-events-database`):

    python -m pytest -p tests.topology --topology=pgbouncer tests/...
    python -m pytest -p tests.topology --topology=replica tests/replica
    python -m pytest -p tests.topology --topology=events tests/...

It starts the servers before pytest-django reads the settings, points
DATABASE_URL (and DATABASE_REPLICA_URL) at them, and stops them when the run
ends. Servers listen on 127.0.0.1 on a free port of TOPOLOGY_PORTS
("5441-5449" unless set). As root they run as the postgres user (PgBouncer
and initdb both refuse root).

- pgbouncer: Debian's `pgbouncer` with an ini generated in a temporary
  directory, pool_mode=transaction, in front of DATABASE_URL's server, and
  CLACKS_DB_POOLER=pgbouncer (config/settings.py; docs/pgbouncer.md).
- replica: a throwaway primary made with initdb and a hot standby made from
  it with `pg_basebackup -R`, streaming (docs/replicas.md). The machine's
  shared server allows no replication connections, and a private cluster
  can be paused, lagged and stopped by the tests without touching anyone else.
- events: EVENTS_DATABASE_URL names a second database, DATABASE_URL's name with
  "_events" added, on the same server (docs/events-database.md). PostgreSQL runs
  no query across two databases, so a join between an event table and an
  account table fails here as it would between two servers. Every test that
  uses the database gets both (pytest-django lets a test reach only the
  databases its marker names).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.pgcluster import PostgresCluster, private_dir

_SERVERS: list = []


def pytest_addoption(parser):
    parser.addoption(
        "--topology",
        dest="clacks_topology",
        choices=["pgbouncer", "replica", "events"],
        help=(
            "run against PostgreSQL behind PgBouncer, with a streaming replica, or with events "
            "on a database of their own (tests/topology.py)"
        ),
    )


def _ports() -> range:
    first, _, last = os.getenv("TOPOLOGY_PORTS", "5441-5449").partition("-")
    return range(int(first), int(last or first) + 1)


def free_port() -> int:
    for port in _ports():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in TOPOLOGY_PORTS={os.getenv('TOPOLOGY_PORTS', '5441-5449')}")


def _wait_for_port(port: int, process: subprocess.Popen | None, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def with_port(url: str, port: int, *, dbname: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{dbname}" if dbname else parts.path, parts.query, ""))


class PgBouncer:
    """Debian's pgbouncer in transaction pooling mode in front of `upstream`'s server."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.user = parts.username or "postgres"
        self.root, as_postgres = private_dir("clacks-pgbouncer-")
        self.port = free_port()
        (self.root / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.root / 'users.txt'}
admin_users = {self.user}
pool_mode = transaction
; Tests wrap each test in a transaction that holds one server connection, and
; threads of a test open more: enough servers for both, few enough to be shared.
default_pool_size = 20
max_client_conn = 500
logfile = {self.root / 'pgbouncer.log'}
"""
        )
        if as_postgres:
            for path in self.root.iterdir():
                shutil.chown(path, user="postgres")
        # -u: it refuses to run as root, and switches user itself.
        user = ["-u", "postgres"] if as_postgres else []
        self.process = subprocess.Popen(
            ["pgbouncer", *user, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, self.root / "pgbouncer.log")

    def admin(self, command: str) -> str:
        """One command on PgBouncer's admin console (simple query protocol, so psql)."""
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "pgbouncer", "-At", "-c", command],
            check=True, capture_output=True, text=True, timeout=30,
        ).stdout  # fmt: skip

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _stop_all() -> None:
    while _SERVERS:
        server = _SERVERS.pop()
        try:
            server.stop() if isinstance(server, PgBouncer) else server.destroy()
        except Exception:  # noqa: BLE001 - the rest must still stop
            pass


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before pytest-django imports the settings: start the servers, set the URLs."""
    topology = early_config.known_args_namespace.clacks_topology
    if not topology:
        return
    atexit.register(_stop_all)
    url = os.getenv("DATABASE_URL", "")
    if topology == "pgbouncer":
        if not url.startswith(("postgres://", "postgresql://")):
            raise pytest.UsageError("--topology=pgbouncer needs DATABASE_URL=postgres://...")
        bouncer = PgBouncer(url)
        _SERVERS.append(bouncer)
        os.environ["DATABASE_URL"] = with_port(url, bouncer.port)
        os.environ["CLACKS_DB_POOLER"] = "pgbouncer"
        os.environ["TOPOLOGY_PGBOUNCER_PORT"] = str(bouncer.port)
    elif topology == "events":
        if not url.startswith(("postgres://", "postgresql://")):
            raise pytest.UsageError("--topology=events needs DATABASE_URL=postgres://...")
        parts = urlsplit(url)
        os.environ["EVENTS_DATABASE_URL"] = urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_events"))
    else:
        primary = PostgresCluster(free_port=free_port)
        _SERVERS.append(primary)
        replica = PostgresCluster(free_port=free_port, primary=primary)
        _SERVERS.append(replica)
        os.environ["DATABASE_URL"] = primary.url("clacks")
        os.environ["DATABASE_REPLICA_URL"] = replica.url("clacks")
    early_config.stash[_TOPOLOGY] = topology


_TOPOLOGY = pytest.StashKey[str]()


def pytest_unconfigure(config):
    _stop_all()


def pytest_collection_modifyitems(config, items):
    """With events on their own database: let every database test reach both."""
    if current(config) != "events":
        return
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None:
            item.add_marker(pytest.mark.django_db(*marker.args, **{**marker.kwargs, "databases": "__all__"}), append=False)
        elif {"db", "transactional_db", "live_server"} & set(getattr(item, "fixturenames", ())):
            transactional = bool({"transactional_db", "live_server"} & set(item.fixturenames))
            item.add_marker(pytest.mark.django_db(transaction=transactional, databases="__all__"), append=False)


def current(config) -> str | None:
    return config.stash.get(_TOPOLOGY, None)


def servers() -> list:
    return list(_SERVERS)


@pytest.fixture(scope="session", autouse=True)
def _topology_test_database(request):
    """With a replica: point the replica's alias (a test mirror of default, which would
    share default's server) back at the standby, which follows the test database the
    primary got. With PgBouncer: before the test database is dropped, close the
    server connections PgBouncer keeps to it (DROP DATABASE refuses while any exist)."""
    topology = current(request.config)
    if topology is None:
        yield
        return
    request.getfixturevalue("django_db_setup")
    from django.db import connections

    test_name = connections["default"].settings_dict["NAME"]
    if topology == "replica":
        replica = connections["replica"]
        replica.close()
        standby = next(server for server in _SERVERS if isinstance(server, PostgresCluster) and server is not _SERVERS[0])
        replica.settings_dict = {**connections["default"].settings_dict, "PORT": standby.port}
    yield
    if topology == "events":
        # Threads of the scheduler's tests may leave connections to the events'
        # test database, which DROP DATABASE would refuse.
        events_name = connections["events"].settings_dict["NAME"]
        connections.close_all()
        with request.getfixturevalue("django_db_blocker").unblock(), connections["events"]._nodb_cursor() as cursor:
            others = "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            cursor.execute(f"SELECT count(pg_terminate_backend(pid)) {others}", [events_name])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # a terminated backend takes a moment to go
                cursor.execute(f"SELECT count(*) {others}", [events_name])
                if not cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
    if topology == "pgbouncer":
        bouncer = next(server for server in _SERVERS if isinstance(server, PgBouncer))
        connections.close_all()
        bouncer.admin(f"KILL {test_name}")
        bouncer.admin(f"RESUME {test_name}")
