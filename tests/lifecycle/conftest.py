"""Fixtures for export and erasure: dana is an admin of alice's organization;
charlie owns an organization of his own."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from organizations.models import Role
from telemetry.ingest import validate_events
from telemetry.storage import store_batch
from tests.factories import make_member, make_org, make_user

RECEIVED_AT = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


def store_events(app, events: list[dict], *, received_at: datetime = RECEIVED_AT) -> int:
    """Store SDK-shaped events the way ingest does (validated, one statement per 1000)."""
    # Validated against a far-off "now" so fixed dates in tests never count as future ones.
    batch = validate_events(events, now=datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert not batch.errors, batch.errors
    stored = 0
    for start in range(0, len(batch.rows), 1000):
        stored += store_batch(app.pk, batch.rows[start : start + 1000], received_at=received_at)
    return stored


@pytest.fixture
def dana(org):
    user = make_user("dana")
    make_member(org, user, role=Role.ADMIN)
    return user


@pytest.fixture
def charlies_org(charlie):
    return make_org(name="Charlie Org", owner=charlie)
