"""Seeding events for analytics tests: SDK-shaped events stored the way ingest stores them."""

from __future__ import annotations

from datetime import datetime, timezone

from telemetry.ingest import validate_events
from telemetry.storage import store_batch
from tests.factories import iso, make_event

# Tests pass this as `now`, so preset ranges and expected buckets are fixed.
NOW = datetime(2026, 3, 10, 12, 30, tzinfo=timezone.utc)


def sdk_event(
    when: datetime,
    *,
    user: str = "a",
    session: str | None = "s1",
    type: str = "command_execution",
    category: str | None = "usage",
    data: dict | None = None,
    os: str = "linux",
    arch: str = "x86_64",
    ci: bool | None = False,
    version: str = "1.2.0",
) -> dict:
    """One SDK event with the fields analytics group by; `user` becomes client_<user>."""
    environment = {"os": os, "arch": arch, "shell": "bash"}
    if ci is not None:
        environment["ci"] = ci
    body = {"type": type, "data": data if data is not None else {"command": "build"}}
    if category is not None:
        body["category"] = category
    event = make_event(
        timestamp=iso(when),
        user_id=f"client_{user}",
        service={"name": "my-cli", "version": version, "language": "rust"},
        environment=environment,
        event=body,
    )
    if session is None:
        del event["session_id"]
    else:
        event["session_id"] = session
    return event


def store(app, *events: dict, now: datetime = NOW) -> int:
    """Validate and store events for the app as ingest does; fails on any rejection."""
    batch = validate_events(list(events), now=now)
    assert batch.errors == []
    return store_batch(app.pk, batch.rows, received_at=now)

