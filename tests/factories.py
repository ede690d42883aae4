"""Test data builders: plain functions with keyword overrides."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from django.contrib.auth import get_user_model

from organizations.models import Membership, Role
from organizations.services import create_app, create_organization

PASSWORD = "correct horse battery staple"


def make_user(username: str, *, password: str = PASSWORD, **fields):
    return get_user_model().objects.create_user(username=username, password=password, email=f"{username}@example.com", **fields)


def make_org(*, name: str = "Acme", owner=None, **fields):
    org = create_organization(name=name, owner=owner)
    if fields:
        for key, value in fields.items():
            setattr(org, key, value)
        org.save()
    return org


def make_member(org, user, *, role: str = Role.VIEWER) -> Membership:
    return Membership.objects.create(organization=org, user=user, role=role)


def make_app(org, *, name: str = "my-cli"):
    """(app, issued credential)."""
    return create_app(organization=org, name=name)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def make_event(**overrides) -> dict:
    """One event as the SDK 0.3 serializes it (docs/protocol.md, Event fields)."""
    now = iso(datetime.now(timezone.utc))
    event = {
        "schema_version": "1.0.0",
        "event_id": str(uuid.uuid4()),
        "timestamp": now,
        "service": {"name": "my-cli", "version": "1.2.0", "language": "rust", "language_version": "1.75.0"},
        "user_id": "client_" + "5f0c" * 16,
        "session_id": "sess_" + uuid.uuid4().hex,
        "environment": {"os": "linux", "arch": "x86_64", "ci": False, "shell": "bash"},
        "event": {
            "type": "command_execution",
            "category": "usage",
            "data": {"command": "build", "duration_ms": 1234, "success": True},
        },
        "metadata": {
            "sdk_version": "telemetry-kit-rust/0.3.0",
            "transmission_timestamp": now,
            "batch_size": 1,
            "retry_count": 0,
        },
    }
    event.update(overrides)
    return event


def make_batch(n: int = 1, **overrides) -> dict:
    return {"events": [make_event(**overrides) for _ in range(n)]}
