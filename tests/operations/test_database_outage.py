"""While the database is away: ingest answers 503 with Retry-After, pages a friendly
page, probes say so; when it is back everything recovers without a restart."""

from __future__ import annotations

import socket
import threading
import time

import orjson
import psycopg
import pytest

from tests.factories import make_batch
from tests.operations import servers


@pytest.fixture
def unreachable_database_url(tmp_path):
    if not servers.on_postgres():
        yield f"sqlite:///{tmp_path / 'no-such-directory' / 'clacks.sqlite3'}"
        return
    # A port held but never listened on: connections to it are refused at once,
    # and no server started meanwhile can take it.
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is fine
        held.bind(("127.0.0.1", servers.free_port()))
        yield f"postgres://postgres@127.0.0.1:{held.getsockname()[1]}/clacks"


def test_without_its_database_the_server_still_answers_every_kind_of_request(gunicorn, unreachable_database_url):
    server = gunicorn(database_url=unreachable_database_url, workers=1)
    app = servers.IssuedApp("org_acme", "app_0123abcd", "secret", "")

    ingest = servers.signed_post(server.port, app, orjson.dumps(make_batch(2)))
    page = servers.request(server.port, "GET", "/")
    admin = servers.request(server.port, "GET", "/admin/", headers={"Cookie": "sessionid=" + "a" * 32})
    health = servers.request(server.port, "GET", "/health")
    ready = servers.request(server.port, "GET", "/ready")
    live = servers.request(server.port, "GET", "/live")

    assert ingest.status == 503
    assert ingest.headers["retry-after"] == "5"
    assert ingest.json() == {
        "error": {"code": "storage_unavailable", "message": "Storage is unavailable; keep the events and try again shortly."},
        "retry_after": 5,
    }
    for answer in (page, admin):
        assert answer.status == 503
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["content-type"].startswith("text/html")
        assert b"Back in a moment" in answer.body and b"Traceback" not in answer.body
    assert health.status == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["checks"]["database"]["status"] == "down"
    assert ready.status == 503
    assert live.status == 200
    server.stop()
    lines = server.log_lines()
    assert not [line for line in lines if "exc_info" in line]  # an outage is a warning, not a traceback
    assert not [line for line in lines if line["level"] == "ERROR"]
    assert {line["status"] for line in lines if line["logger"] == "clacks.request"} == {503, 200}


# --- PostgreSQL going away under a running server -----------------------------------------


def terminate_backends(database_url: str, *, waiting_on_a_lock: bool = False) -> int:
    condition = "AND wait_event_type = 'Lock'" if waiting_on_a_lock else ""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND pid <> pg_backend_pid() {condition}"
        ).fetchall()
    return len(rows)


def wait_for_lock_waiter(database_url: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the server never waited on the lock")


class InFlight(threading.Thread):
    """One signed POST sent from a thread, so the test can act while it waits."""

    def __init__(self, port, app, body):
        super().__init__(daemon=True)
        self.args_ = (port, app, body)
        self.answer = None

    def run(self):
        self.answer = servers.signed_post(*self.args_)


@pytest.mark.postgres
def test_connections_killed_between_requests_are_replaced_without_a_restart(on_postgres, gunicorn, served_database):
    server = gunicorn(workers=1)
    app = servers.create_app(server.env, name="killed-between")
    assert servers.signed_post(server.port, app, orjson.dumps(make_batch(2))).status == 200

    assert terminate_backends(served_database) >= 1
    after = servers.signed_post(server.port, app, orjson.dumps(make_batch(3)))

    assert after.status == 200  # CONN_HEALTH_CHECKS noticed the dead connection and opened a new one
    assert servers.request(server.port, "GET", "/health").status == 200
    assert servers.count_events(served_database, app.app_id) == (5, 5)


@pytest.mark.postgres
def test_a_connection_killed_mid_batch_answers_503_stores_nothing_and_the_retry_succeeds(
    on_postgres, gunicorn, served_database
):
    server = gunicorn(workers=1)
    app = servers.create_app(server.env, name="killed-mid-batch")
    body = orjson.dumps(make_batch(50))

    with psycopg.connect(served_database) as blocker:
        # Hold the events table so the batch's INSERT waits, then kill the waiting backend.
        blocker.execute("LOCK TABLE telemetry_event IN ACCESS EXCLUSIVE MODE")
        in_flight = InFlight(server.port, app, body)
        in_flight.start()
        wait_for_lock_waiter(served_database)
        assert terminate_backends(served_database, waiting_on_a_lock=True) == 1
        in_flight.join(30)
        blocker.rollback()

    assert in_flight.answer.status == 503
    assert in_flight.answer.headers["retry-after"] == "5"
    assert in_flight.answer.json()["error"]["code"] == "storage_unavailable"
    assert servers.count_events(served_database, app.app_id) == (0, 0)  # no partial batch
    retry = servers.signed_post(server.port, app, body)  # as the SDK retries: same bytes, new nonce
    assert retry.status == 200
    assert retry.json()["accepted"] == 50 and retry.json()["duplicates"] == 0
    assert servers.count_events(served_database, app.app_id) == (50, 50)


@pytest.mark.postgres
def test_a_statement_past_the_timeout_answers_503_and_is_logged_as_slow(on_postgres, gunicorn, served_database):
    server = gunicorn(workers=1, CLACKS_DB_STATEMENT_TIMEOUT_MS="300", CLACKS_SLOW_QUERY_MS="100")
    app = servers.create_app(server.env, name="statement-timeout")
    batch = make_batch(2)

    with psycopg.connect(served_database) as blocker:
        blocker.execute("LOCK TABLE telemetry_event IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        answer = servers.signed_post(server.port, app, orjson.dumps(batch))
        waited = time.monotonic() - started
        blocker.rollback()

    assert answer.status == 503
    assert 0.3 <= waited < 5
    assert servers.request(server.port, "GET", "/health").json()["checks"]["database"]["connection"][
        "statement_timeout_ms"
    ] == 300
    assert servers.signed_post(server.port, app, orjson.dumps(batch)).status == 200
    server.stop()
    [slow] = [line for line in server.log_lines() if line["logger"] == "clacks.db" and line.get("error")]
    assert "INSERT INTO telemetry_event" in slow["sql"]
    # About the timeout: PostgreSQL's timer can fire a fraction of a millisecond before
    # the client's clock says 300 ms (299.5 ms was seen), and the slow threshold is 100.
    assert slow["duration_ms"] >= 290
    assert slow["request_id"]
    assert batch["events"][0]["event_id"] not in server.log_path.read_text()  # parameters are never logged
