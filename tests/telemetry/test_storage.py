"""Storing a batch: one statement whatever its size, atomic, idempotent under concurrency."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import orjson
import pytest
from django.db import IntegrityError, connection, connections
from django.test.utils import CaptureQueriesContext

from telemetry import ingest, storage
from telemetry.models import Event
from django.test import Client

from tests.factories import make_batch, make_event
from tests.signing import current_secret, ingest_path, signed_headers


def test_a_batch_of_1000_costs_the_same_queries_as_a_batch_of_1(signed_post, app):
    signed_post(app, make_batch(1))  # warm the app cache, as a running server would be

    with CaptureQueriesContext(connection) as one:
        assert signed_post(app, make_batch(1)).status_code == 200
    with CaptureQueriesContext(connection) as thousand:
        assert signed_post(app, make_batch(1000)).status_code == 200

    assert len(one) == len(thousand)
    # The nonce, the request counter and quota (telemetry.limits), the insert with its
    # rollups (one statement on PostgreSQL; on SQLite an id lookup, the insert and two
    # rollup upserts), and the savepoint around them.
    assert len(thousand) <= 10
    assert Event.objects.for_app(app).count() == 1002


def test_a_cold_cache_adds_a_constant_number_of_lookups(signed_post, app):
    with CaptureQueriesContext(connection) as cold:
        assert signed_post(app, make_batch(1000)).status_code == 200

    assert len(cold) <= 13  # + the app lookups and, once per process, the plans (telemetry.limits)


def test_a_failure_in_the_middle_of_a_batch_stores_nothing(app):
    now = datetime.now(timezone.utc)
    rows = ingest.validate_events([make_event() for _ in range(5)], now=now).rows
    rows[2]["user_id"] = None  # breaks NOT NULL inside the statement, after earlier rows

    with pytest.raises(IntegrityError):
        storage.store_batch(app.pk, rows, received_at=now)

    assert Event.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_failure_in_the_middle_of_a_batch_stores_nothing_and_leaves_the_connection_usable(
    on_postgres, app
):
    # As a gunicorn worker runs it: no transaction around store_batch but its own statement.
    now = datetime.now(timezone.utc)
    rows = ingest.validate_events([make_event() for _ in range(5)], now=now).rows
    rows[2]["user_id"] = None

    assert connection.get_autocommit()
    with pytest.raises(IntegrityError):
        storage.store_batch(app.pk, rows, received_at=now)

    assert Event.objects.count() == 0
    rows[2]["user_id"] = rows[1]["user_id"]
    assert storage.store_batch(app.pk, rows, received_at=now) == 5
    assert Event.objects.count() == 5


def test_store_batch_reports_how_many_rows_were_new(app):
    now = datetime.now(timezone.utc)
    rows = ingest.validate_events([make_event() for _ in range(3)], now=now).rows

    assert storage.store_batch(app.pk, rows, received_at=now) == 3
    assert storage.store_batch(app.pk, rows, received_at=now) == 0
    assert storage.store_batch(app.pk, rows + ingest.validate_events([make_event()], now=now).rows, received_at=now) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_batches_sent_at_once_are_stored_once(on_postgres, signed_post, app):
    body = orjson.dumps(make_batch(200))
    barrier = threading.Barrier(2)
    results: list[dict] = []

    secret = current_secret(app)

    def send():
        try:
            barrier.wait()
            response = Client().generic(
                "POST", ingest_path(app), body, content_type="application/json", **signed_headers(secret, body)
            )
            results.append(response.json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Event.objects.for_app(app).count() == 200
    assert sorted(r["accepted"] for r in results) == [200, 200]
    assert sorted(r["duplicates"] for r in results) == [0, 200]
