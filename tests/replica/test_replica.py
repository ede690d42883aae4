"""Dashboard reads from a streaming replica made by pg_basebackup, and back to the
primary when the replica lags or is down (telemetry/replicas.py, docs/replicas.md)."""

from __future__ import annotations

import time

import pytest
from django.db import connections, router
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from telemetry import replicas
from telemetry.models import Event
from tests.factories import make_batch
from tests.pgcluster import PostgresCluster
from tests.topology import servers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=["default", "replica"])]


def standby() -> PostgresCluster:
    clusters = [server for server in servers() if isinstance(server, PostgresCluster)]
    return clusters[1]  # the primary is made first


def on(alias: str, sql: str, params=()):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def wait_until(condition, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def replayed() -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = on("default", "SELECT pg_current_wal_lsn()::text")
    wait_until(lambda: on("replica", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]))


@pytest.fixture(autouse=True)
def _check_every_time(settings):
    settings.CLACKS_REPLICA_CHECK_SECONDS = 0
    settings.CLACKS_REPLICA_MAX_LAG = 2
    replicas.forget_state()
    yield
    if standby().running() and on("replica", "SELECT pg_is_wal_replay_paused()"):
        on("replica", "SELECT pg_wal_replay_resume()::text")
    replicas.forget_state()


@pytest.fixture
def events_page(client, alice, org, app):
    client.force_login(alice)
    return f"/orgs/{org.public_id}/apps/{app.public_id}/events/"


def replica_metrics(client) -> dict[str, float]:
    text = client.get("/metrics").content.decode()
    return {family.name: family.samples[0].value for family in text_string_to_metric_families(text)
            if family.name.startswith("clacks_db_replica_")}  # fmt: skip


def tables(queries) -> str:
    return " ".join(query["sql"] for query in queries)


def test_the_replica_is_a_hot_standby_of_the_test_database():
    assert on("replica", "SELECT pg_is_in_recovery()") is True
    assert on("default", "SELECT pg_is_in_recovery()") is False
    assert on("replica", "SELECT current_database()") == connections["default"].settings_dict["NAME"]


def test_pages_read_events_from_the_replica_and_accounts_from_the_primary(client, app, signed_post, events_page):
    batch = make_batch(3)
    assert signed_post(app, batch).status_code == 200
    replayed()
    with CaptureQueriesContext(connections["replica"]) as on_replica, CaptureQueriesContext(connections["default"]) as on_primary:
        response = client.get(events_page)
    assert response.status_code == 200
    for event in batch["events"]:
        assert event["event_id"] in response.content.decode()
    assert "telemetry_event" in tables(on_replica)
    assert "telemetry_event" not in tables(on_primary)
    # Sessions, users and apps stay on the primary: a page right after a save shows it.
    assert "django_session" in tables(on_primary) and "organizations_app" in tables(on_primary)
    assert "django_session" not in tables(on_replica) and "organizations_app" not in tables(on_replica)

    assert client.get(events_page.replace("/events/", "/")).status_code == 200  # the overview, its figures


def test_writes_never_reach_the_replica(app, signed_post):
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        assert signed_post(app, make_batch(2)).status_code == 200
    assert on_replica.captured_queries == []


def test_a_lagging_replica_sends_reads_to_the_primary_and_health_says_so(client, app, signed_post, events_page):
    assert client.get("/health").json()["replica"]["status"] == "up"
    on("replica", "SELECT pg_wal_replay_pause()::text")
    batch = make_batch(2)
    assert signed_post(app, batch).status_code == 200
    # Received but not replayed; the lag is then the age of the last replayed commit.
    wait_until(lambda: on("replica", "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"))
    time.sleep(2.1)

    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert health.json()["replica"]["status"] == "lagging"
    assert health.json()["replica"]["lag_seconds"] > 2
    assert health.json()["replica"]["reads_from"] == "default"
    with CaptureQueriesContext(connections["replica"]) as on_replica:
        response = client.get(events_page)
    assert all(event["event_id"] in response.content.decode() for event in batch["events"])  # the primary's rows
    assert "telemetry_event" not in tables(on_replica)

    on("replica", "SELECT pg_wal_replay_resume()::text")
    replayed()
    assert client.get("/health").json()["replica"] == {
        "status": "up", "reads_from": "replica", "lag_seconds": 0.0, "max_lag_seconds": 2,
    }  # fmt: skip


def test_a_stopped_replica_sends_reads_to_the_primary_and_health_says_so(client, app, signed_post, events_page):
    batch = make_batch(1)
    assert signed_post(app, batch).status_code == 200
    standby().stop()
    try:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "healthy"
        assert health.json()["replica"]["status"] == "down"
        assert health.json()["replica"]["reads_from"] == "default"
        response = client.get(events_page)
        assert response.status_code == 200 and batch["events"][0]["event_id"] in response.content.decode()
        assert replica_metrics(client) == {"clacks_db_replica_up": 0, "clacks_db_replica_lag_seconds": -1}
    finally:
        standby().start()
    wait_until(lambda: replicas.state(fresh=True).usable)
    assert client.get("/health").json()["replica"]["status"] == "up"
    assert replica_metrics(client) == {"clacks_db_replica_up": 1, "clacks_db_replica_lag_seconds": 0}


def test_with_the_replica_check_cached_a_lag_is_seen_only_after_it_expires(settings):
    settings.CLACKS_REPLICA_CHECK_SECONDS = 60
    first = replicas.state()
    assert first.usable and replicas.state() is first  # one check per process per period
    assert replicas.state(fresh=True) is not first


def test_once_a_get_request_writes_even_with_raw_sql_it_reads_the_primary(rf):
    seen = []

    def view(request):
        seen.append(router.db_for_read(Event))
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")  # reading changes nothing
        seen.append(router.db_for_read(Event))
        with connections["default"].cursor() as cursor:
            cursor.execute("UPDATE telemetry_scheduledjob SET runs = runs WHERE false")
        seen.append(router.db_for_read(Event))
        return HttpResponse()

    replicas.middleware(view)(rf.get("/"))
    replicas.middleware(view)(rf.post("/"))
    assert seen == ["replica", "replica", "default", "default", "default", "default"]
