"""Stopping and restarting PostgreSQL under a stream of signed batches: 503s with
Retry-After while it is down, then recovery without a restart, and every event
stored exactly once."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from tests.factories import make_batch
from tests.operations import servers
from tests.operations.servers import sample

CLIENTS = 4
BATCHES_PER_CLIENT = 15
EVENTS_PER_BATCH = 10


@pytest.fixture
def private_postgres():
    cluster = servers.private_postgres()
    yield cluster
    cluster.destroy()


class SdkLikeClient(threading.Thread):
    """Sends its batches in order; on 503 it waits and sends the same bytes again with a
    new timestamp and nonce, as the SDK does (docs/protocol.md, What the telemetry-kit SDK 0.3 does on the wire)."""

    def __init__(self, port: int, app: servers.IssuedApp):
        super().__init__(daemon=True)
        self.port, self.app = port, app
        self.answers: list[servers.Answer] = []
        self.sent = 0

    def run(self):
        for _ in range(BATCHES_PER_CLIENT):
            body = orjson.dumps(make_batch(EVENTS_PER_BATCH))
            while True:
                answer = servers.signed_post(self.port, self.app, body, timeout=20)
                self.answers.append(answer)
                if answer.status != 503:
                    break
                time.sleep(0.2)
            self.sent += 1


@pytest.mark.postgres
def test_a_database_restart_under_load_gives_503s_then_recovers_with_nothing_lost_or_doubled(
    on_postgres, private_postgres, gunicorn
):
    database_url = servers.create_postgres_database(private_postgres.url(), "clacks")
    env = servers.base_env(DATABASE_URL=database_url)
    servers.manage("migrate", "--noinput", env=env)
    server = gunicorn(database_url=database_url, workers=4, CLACKS_DB_CONNECT_TIMEOUT="2")
    app = servers.create_app(server.env, name="restart")

    clients = [SdkLikeClient(server.port, app) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    while sum(client.sent for client in clients) < 8:
        time.sleep(0.05)
    private_postgres.stop("fast")
    while sum(answer.status == 503 for client in clients for answer in client.answers) < 8:
        time.sleep(0.05)
    health_while_down = servers.request(server.port, "GET", "/health")
    private_postgres.start()
    for client in clients:
        client.join(120)

    answers = [answer for client in clients for answer in client.answers]
    unavailable = [answer for answer in answers if answer.status == 503]
    assert all(not client.is_alive() for client in clients)
    assert {answer.status for answer in answers} == {200, 503}
    assert health_while_down.status == 503
    for answer in unavailable:
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["error"]["code"] == "storage_unavailable"
    successes = [answer.json() for answer in answers if answer.status == 200]
    assert len(successes) == CLIENTS * BATCHES_PER_CLIENT
    expected = CLIENTS * BATCHES_PER_CLIENT * EVENTS_PER_BATCH
    assert servers.count_events(database_url, app.app_id) == (expected, expected)
    assert sum(body["accepted"] - body["duplicates"] for body in successes) == expected

    metrics = servers.scrape(server.port)
    assert sample(metrics, "clacks_ingest_batches_total", status="503") == len(unavailable)
    assert sample(metrics, "clacks_ingest_batches_total", status="200") == len(successes)
    assert servers.request(server.port, "GET", "/health").status == 200
    server.stop()
    lines = server.log_lines()
    booted = [line for line in lines if "Booting worker" in line.get("message", "")]
    assert len(booted) == 4  # recovered without restarting a worker
    assert not [line for line in lines if "exc_info" in line]
