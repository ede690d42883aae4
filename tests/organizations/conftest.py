"""Helpers for the admin pages' tests: signed-in clients and stored events of a given age."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from telemetry.ingest import validate_events
from telemetry.storage import store_batch
from tests.factories import iso, make_event


@pytest.fixture
def login(client):
    """Sign the test client in as the given user and return it."""

    def sign_in(user) -> Client:
        client.force_login(user)
        return client

    return sign_in


def store_events(app, n: int, *, age: timedelta = timedelta(0), now: datetime | None = None) -> int:
    """Store n SDK events for the app, each `age` old, the way ingest stores them."""
    now = now or timezone.now()
    when = iso(now - age)
    batch = validate_events([make_event(timestamp=when) for _ in range(n)], now=now)
    assert batch.errors == []
    return store_batch(app.pk, batch.rows, received_at=now)


@pytest.fixture
def events():
    return store_events
