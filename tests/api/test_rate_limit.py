"""The per-key rate limit, counted in the database and in Redis (as ingest's limits are)."""

from __future__ import annotations

import pytest

from api import limits
from api.errors import ApiError
from api.models import ApiKey
from tests.limits.conftest import redis_counters  # noqa: F401  (a fixture)


@pytest.fixture(params=["database", "redis"])
def counted_in(request, settings):
    if request.param == "redis":
        request.getfixturevalue("redis_counters")
    else:
        settings.CLACKS_SHARED_STORE = "database"
    return request.param


def test_the_limit_holds_per_key_and_starts_over_each_minute(counted_in, make_key, settings):
    settings.CLACKS_API_REQUESTS_PER_MINUTE = 2
    make_key("read")
    key = ApiKey.objects.get()
    minute = 1_800_000_000 // 60 * 60
    assert limits.enforce(key.pk, now=minute + 1).remaining == 1
    assert limits.enforce(key.pk, now=minute + 2).remaining == 0
    with pytest.raises(ApiError) as refused:
        limits.enforce(key.pk, now=minute + 50)
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (429, "rate_limit_exceeded", 10)
    assert refused.value.headers["X-RateLimit-Reset"] == str(minute + 60)
    assert limits.enforce(key.pk, now=minute + 60).count == 1  # a new minute


def test_over_http_with_redis(api, make_key, org, settings, redis_counters):  # noqa: F811
    settings.CLACKS_API_REQUESTS_PER_MINUTE = 1
    token = make_key("read")
    assert api("GET", "/api/v1/orgs/", token).status_code == 200
    refused = api("GET", "/api/v1/orgs/", token)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1


def test_an_unreachable_redis_answers_503_with_retry_after(api, make_key, org, settings):
    token = make_key("read")
    settings.CLACKS_SHARED_STORE = "redis"
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    response = api("GET", "/api/v1/orgs/", token)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert response["Retry-After"] == "5"
