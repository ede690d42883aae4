"""GET /health, /live, /ready (docs/protocol.md, Probes and metrics)."""

import pytest

from telemetry.models import Event
from tests.factories import make_batch


def test_health_reports_the_version_and_the_database(client, db, settings):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"] == settings.CLACKS_VERSION
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["database"]["pending_migrations"] == 0


def test_live_touches_nothing(client):
    # No `db` fixture: pytest-django makes any database access raise here.
    response = client.get("/live")

    assert response.status_code == 200


def test_ready_when_the_database_answers_and_nothing_is_pending(client, db):
    assert client.get("/ready").status_code == 200


# --- With Redis (REDIS_URL) -------------------------------------------------------------------


@pytest.fixture
def redis_up(settings):
    # A database of its own: the probes only PING, so they share it with nobody's keys.
    settings.REDIS_URL = "redis://127.0.0.1:6379/8"
    settings.CLACKS_SHARED_STORE = "redis"
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": settings.REDIS_URL}}


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CLACKS_SHARED_STORE = "redis"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": settings.REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


def test_health_names_the_database_as_the_store_without_redis(client, db, settings):
    settings.REDIS_URL = ""
    settings.CLACKS_SHARED_STORE = "database"

    body = client.get("/health").json()

    assert body["stores"] == {"nonces": "database", "rate_limits": "database"}
    assert "redis" not in body["checks"]


def test_health_checks_redis_and_names_it_as_the_store(client, db, redis_up):
    response = client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["stores"] == {"nonces": "redis", "rate_limits": "redis"}
    assert body["checks"]["redis"]["status"] == "up"
    assert body["checks"]["redis"]["latency_ms"] >= 0
    assert client.get("/ready").json() == {"status": "ready"}


def test_with_redis_down_ingest_refuses_and_the_probes_say_why(client, signed_post, app, redis_down):
    ingest = signed_post(app, make_batch(1))
    health = client.get("/health")
    ready = client.get("/ready")
    live = client.get("/live")

    assert ingest.status_code == 503
    assert ingest.json()["error"]["code"] == "storage_unavailable"
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["checks"]["redis"] == {"status": "down", "error": "ConnectionError"}
    assert health.json()["checks"]["database"]["status"] == "up"
    assert (ready.status_code, ready.json()) == (503, {"status": "not_ready", "reason": "redis unreachable"})
    assert live.status_code == 200
    assert Event.objects.count() == 0
