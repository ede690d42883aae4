"""/metrics shows the database connections of each worker and in total, the time
taken to get one, and PostgreSQL's connection headroom (telemetry/dbmetrics.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import make_batch
from tests.operations import servers
from tests.operations.servers import sample


def by_pid(samples: dict, name: str, **labels: str) -> dict[str, float]:
    wanted = set(labels.items())
    return {dict(key)["pid"]: value for (sample_name, key), value in samples.items()
            if sample_name == name and wanted <= set(key)}  # fmt: skip


def test_connections_are_shown_per_worker_and_in_total(gunicorn):
    server = gunicorn(workers=2)
    app = servers.create_app(server.env, name="connections")
    bodies = [orjson.dumps(make_batch(2)) for _ in range(24)]
    with ThreadPoolExecutor(6) as pool:  # both workers get requests, so both connect
        assert set(pool.map(lambda body: servers.signed_post(server.port, app, body).status, bodies)) == {200}

    metrics = servers.scrape(server.port)
    open_per_worker = by_pid(metrics, "clacks_db_process_connections", alias="default", state="open")
    assert len(open_per_worker) == 2 and all(count == 1 for count in open_per_worker.values())
    assert sample(metrics, "clacks_db_connections", alias="default", state="open") == 2
    # The worker answering this scrape is using its connection; the other one's waits idle.
    assert sample(metrics, "clacks_db_connections", alias="default", state="in_use") == 1
    assert sample(metrics, "clacks_db_connections", alias="default", state="idle") == 1
    # Each worker connected once (CONN_MAX_AGE keeps it), and that time was measured.
    if servers.on_postgres():
        assert sample(metrics, "clacks_db_connection_wait_seconds_count", alias="default") >= 2
        assert sample(metrics, "clacks_db_connection_wait_seconds_sum", alias="default") > 0


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (item.name, frozenset(item.labels.items())): item.value
        for family in text_string_to_metric_families(response.content.decode())
        for item in family.samples
    }


@pytest.mark.postgres
def test_postgresql_connection_headroom_comes_from_pg_stat_activity(client, db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int")
        usable = cursor.fetchone()[0]
    metrics = scrape(client)
    assert sample(metrics, "clacks_postgres_max_connections") == usable
    in_use = sum(value for (name, _), value in metrics.items() if name == "clacks_postgres_connections")
    assert in_use >= 1  # this test's own connection at least
    assert sample(metrics, "clacks_postgres_connections_headroom") == usable - in_use
    assert sample(metrics, "clacks_postgres_connections", state="active") >= 1  # the scrape's query itself


def test_without_a_replica_no_replica_metrics_are_set(client, db):
    metrics = scrape(client)
    assert not [name for name, _ in metrics if name.startswith("clacks_db_replica_")]
