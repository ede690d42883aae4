"""Shared fixtures: alice owns the organization, bob is a member, charlie is an outsider."""

from __future__ import annotations

import os

import orjson
import pytest
from django.core.cache import cache
from django.db import connection

from organizations.models import Role
from tests.factories import make_app, make_member, make_org, make_user
from tests.signing import ingest_path, signed_headers


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests fail loudly (never skip) when the suite runs elsewhere
    in CI, and are deselected on a plain SQLite run."""
    on_postgres = os.getenv("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    if on_postgres:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def charlie(db):
    return make_user("charlie")


@pytest.fixture
def org(alice, bob):
    organization = make_org(name="Alice Org", owner=alice)
    make_member(organization, bob, role=Role.VIEWER)
    return organization


@pytest.fixture
def app_and_credentials(org):
    return make_app(org, name="my-cli")


@pytest.fixture
def app(app_and_credentials):
    return app_and_credentials[0]


@pytest.fixture
def secret(app_and_credentials):
    return app_and_credentials[1].secret


@pytest.fixture
def token(app_and_credentials):
    return app_and_credentials[1].token


@pytest.fixture
def signed_post(client, secret):
    """POST a body to an app's ingest URL, signed the SDK's way (docs/protocol.md, Signature)."""

    def post(app, body, *, key=None, timestamp=None, nonce="new", headers=None, path=None):
        if not isinstance(body, (bytes, str)):
            body = orjson.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        extra = signed_headers(key or secret, body, timestamp=timestamp, nonce=nonce)
        for name, value in (headers or {}).items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        return client.generic("POST", path or ingest_path(app), body, content_type="application/json", **extra)

    return post


@pytest.fixture
def on_postgres():
    assert connection.vendor == "postgresql", "this test needs DATABASE_URL=postgres://..."
    return True
