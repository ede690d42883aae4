"""Shared fixtures: alice owns the organization, bob is a member, charlie is an outsider."""

from __future__ import annotations

import ipaddress
import os
import socket

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


# --- Network: these machines may send traffic to 127.0.0.0/8 only ----------------------

# Connections refused by the guard below, as "test id: address"; a test that made one fails.
_OUTSIDE_CONNECTIONS: list[str] = []
_real_connect, _real_connect_ex = socket.socket.connect, socket.socket.connect_ex


def _loopback(address) -> bool:
    if not isinstance(address, tuple):
        return True  # a Unix socket path
    host = address[0]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a name: it would be resolved to who knows where
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _guarded(real):
    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            _OUTSIDE_CONNECTIONS.append(f"{os.environ.get('PYTEST_CURRENT_TEST', '?')}: {address!r}")
            raise ConnectionRefusedError(f"tests may connect to 127.0.0.0/8 only, not {address!r}")
        return real(sock, address)

    return connect


def pytest_sessionstart(session):
    """Every Python socket of the test process may connect to loopback only (PostgreSQL's
    libpq and Redis on 127.0.0.1 keep working); the alerts' refusal tests rely on it to
    prove their guard refused before any connection was tried."""
    socket.socket.connect = _guarded(_real_connect)
    socket.socket.connect_ex = _guarded(_real_connect_ex)


@pytest.fixture(autouse=True)
def _only_loopback_connections():
    before = len(_OUTSIDE_CONNECTIONS)
    yield
    tried = _OUTSIDE_CONNECTIONS[before:]
    assert not tried, f"connections outside 127.0.0.0/8 were tried: {tried}"


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
