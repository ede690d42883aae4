"""Requests per app per minute: counted once authenticated, refused past the plan's rate."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest

from organizations.models import Tier
from telemetry import limits
from telemetry.models import Event
from tests.factories import make_app, make_batch
from tests.signing import signed_headers

pytestmark = pytest.mark.usefixtures("steady_minute")


def window_end(now: float) -> int:
    return int(now) // 60 * 60 + 60


def test_every_accepted_batch_carries_the_rate_headers(store, signed_post, app):
    before = time.time()
    response = signed_post(app, make_batch(2))

    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "60000"  # the self-hosted default
    assert response["X-RateLimit-Remaining"] == "59999"
    assert int(response["X-RateLimit-Reset"]) in (window_end(before), window_end(time.time()))


def test_the_remaining_count_goes_down_with_each_request(store, signed_post, free_org, app):
    remaining = [signed_post(app, make_batch(1))["X-RateLimit-Remaining"] for _ in range(3)]

    assert remaining == ["2", "1", "0"]


def test_the_request_past_the_rate_gets_429_with_retry_after(store, signed_post, free_org, app):
    for _ in range(3):
        assert signed_post(app, make_batch(1)).status_code == 200

    before = time.time()
    refused = signed_post(app, make_batch(1))

    assert refused.status_code == 429
    body = refused.json()
    retry_after = body["retry_after"]
    assert body == {
        "error": {
            "code": "rate_limit_exceeded",
            "message": f"This application may send 3 requests per minute; try again in {retry_after} s.",
        },
        "retry_after": retry_after,
    }
    assert isinstance(retry_after, int) and 1 <= retry_after <= 60
    assert abs(retry_after - (window_end(before) - before)) <= 2
    assert refused["Retry-After"] == str(retry_after)
    assert refused["X-RateLimit-Limit"] == "3"
    assert refused["X-RateLimit-Remaining"] == "0"
    assert refused["X-RateLimit-Reset"] == str(window_end(before))
    assert Event.objects.for_app(app).count() == 3


def test_errors_after_authentication_carry_the_rate_headers_and_count(store, signed_post, free_org, app):
    malformed = signed_post(app, b'{"events": "nope"}')
    partial = signed_post(app, {"events": [make_batch(1)["events"][0], {"event_id": "x"}]})

    assert malformed.status_code == 400
    assert malformed["X-RateLimit-Remaining"] == "2"
    assert partial.status_code == 207
    assert partial["X-RateLimit-Remaining"] == "1"


def test_forged_and_replayed_requests_spend_nothing(store, signed_post, free_org, app):
    nonce = str(uuid.uuid4())
    forged = signed_post(app, make_batch(1), key="not the secret")
    first = signed_post(app, make_batch(1), nonce=nonce)
    replay = signed_post(app, make_batch(1), nonce=nonce)
    after = signed_post(app, make_batch(1))

    assert forged.status_code == 401 and "X-RateLimit-Limit" not in forged
    assert replay.status_code == 409 and "X-RateLimit-Limit" not in replay
    assert first["X-RateLimit-Remaining"] == "2"
    assert after["X-RateLimit-Remaining"] == "1"


def test_each_app_has_its_own_rate(store, signed_post, free_org, app):
    other, credential = make_app(free_org, name="other-cli")
    for _ in range(3):
        signed_post(app, make_batch(1))

    assert signed_post(app, make_batch(1)).status_code == 429
    assert signed_post(other, make_batch(1), key=credential.secret).status_code == 200


def test_the_batch_endpoint_is_limited_too(store, client, free_org, app, secret, token):
    statuses = []
    for _ in range(4):
        raw = orjson.dumps(make_batch(1))
        response = client.generic(
            "POST", "/v1/events/batch", raw, content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}", **signed_headers(secret, raw),
        )
        statuses.append((response.status_code, response["X-RateLimit-Remaining"]))

    assert statuses == [(200, "2"), (200, "1"), (200, "0"), (429, "0")]


def test_a_new_minute_starts_a_new_count(store, app):
    minute = 1_800_000_000 // 60 * 60
    counts = [
        limits.count_request(app.pk, tier=Tier.FREE, now=minute + 1).count,
        limits.count_request(app.pk, tier=Tier.FREE, now=minute + 59.9).count,
        limits.count_request(app.pk, tier=Tier.FREE, now=minute + 60).count,
    ]

    assert counts == [1, 2, 1]


def test_a_late_request_from_the_previous_minute_counts_in_the_current_one(settings, app):
    settings.CLACKS_SHARED_STORE = "database"
    minute = 1_800_000_000 // 60 * 60
    limits.count_request(app.pk, tier=Tier.FREE, now=minute + 61)
    late = limits.count_request(app.pk, tier=Tier.FREE, now=minute + 59)  # another instance's clock behind

    assert (late.count, late.reset_at) == (2, minute + 120)


def test_an_unreachable_redis_answers_503_with_retry_after(signed_post, app, settings):
    settings.CLACKS_SHARED_STORE = "redis"  # at an address where nothing listens (below)
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }

    response = signed_post(app, make_batch(1))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert response["Retry-After"] == "5"
    assert Event.objects.count() == 0
