"""API keys and seeded events for the REST API's tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from api import keys
from api.models import Scope
from dashboard.models import Funnel
from tests.dashboard.conftest import sdk_event, store

ALL_SCOPES = list(Scope.values)


@pytest.fixture
def make_key(org, alice):
    """make_key(*scopes, organization=org) -> the plain token of a new key."""

    def make(*scopes: str, organization=None, **fields) -> str:
        issued = keys.create_key(organization or org, name="test key", scopes=list(scopes or ALL_SCOPES), by=alice, **fields)
        return issued.token

    return make


@pytest.fixture
def api(client):
    """api(method, path, token, **kwargs): a request with `Authorization: Bearer <token>`."""

    def call(method: str, path: str, token: str | None = None, *, data=None, **extra):
        if token is not None:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if data is not None:
            import orjson

            return client.generic(method, path, orjson.dumps(data), content_type="application/json", **extra)
        return client.generic(method, path, **extra)

    return call


def seed(app, *, now: datetime | None = None) -> None:
    """A mix of users, versions, platforms, commands and outcomes over the last 40 days."""
    now = now or datetime.now(timezone.utc)
    events = []
    for day in range(40):
        when = now - timedelta(days=day, hours=1)
        for n in range(3 + day % 4):
            user = f"u{(day + n) % 9}"
            version = ("1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1")[(day // 10 + n) % 4]
            os_, arch = (("linux", "x86_64"), ("macos", "aarch64"), ("windows", "x86_64"))[n % 3]
            data = {"command": ("build", "test", "deploy")[n % 3], "success": (day + n) % 5 != 0,
                    "duration_ms": 40 + 13 * n + day, "exit_code": 0 if (day + n) % 5 else 2, "target": ("x", "y")[n % 2]}  # fmt: skip
            events.append(sdk_event(when - timedelta(minutes=n), user=user, session=f"s{day}-{n % 2}", version=version,
                                    os=os_, arch=arch, ci=n % 2 == 0 if n < 3 else None, data=data))  # fmt: skip
        events.append(sdk_event(when, user=f"u{day % 9}", type="feature_used", data={"feature": "colors", "level": day % 3}))
    store(app, *events, now=now)


@pytest.fixture
def seeded(app):
    seed(app)
    return app


@pytest.fixture
def funnel(app):
    return Funnel.objects.create(
        app=app, name="Build then deploy", steps=[{"type": "command_execution", "name": "build"},
                                                  {"type": "command_execution", "name": "deploy"}],
        window_seconds=86400,
    )  # fmt: skip
