"""Limits fixtures: plans re-read for every test, and each counter store to run against."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid

import pytest
import redis

from organizations.models import Tier
from telemetry import limits

# Redis databases reserved for these tests (never FLUSHALL): 5 for the two-server
# tests, 6 and 7 for the in-process ones, so SQLite and PostgreSQL runs can overlap.
TWO_INSTANCE_REDIS_DB = 5


def _redis_url() -> str:
    on_postgres = os.getenv("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    return f"redis://127.0.0.1:6379/{7 if on_postgres else 6}"


@pytest.fixture(autouse=True)
def _fresh_plans():
    limits.forget_plans()
    yield
    limits.forget_plans()


def set_plan(settings, tier: str, **fields: int) -> None:
    """Change some of one tier's defaults (CLACKS_PLANS) for this test; the settings fixture restores them."""
    plans = settings.CLACKS_PLANS
    settings.CLACKS_PLANS = {**plans, tier: dataclasses.replace(plans[tier], **fields)}


def delete_keys(client: redis.Redis, prefix: str) -> None:
    """Delete this test's keys only: other runs may share the database (never FLUSHDB)."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_counters(settings):
    """Counters and the cache in Redis, under key prefixes no other test run uses
    (database ids repeat from one test database to the next)."""
    url = _redis_url()
    client = redis.Redis.from_url(url)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.CLACKS_SHARED_STORE = "redis"
    settings.CLACKS_REDIS_KEY_PREFIX = f"{prefix}:clacks"
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix}}
    yield client
    delete_keys(client, prefix)


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    """Run the test once with the database counters and once with Redis."""
    if request.param == "redis":
        request.getfixturevalue("redis_counters")
    else:
        settings.CLACKS_SHARED_STORE = "database"
    return request.param


@pytest.fixture
def free_org(org, settings):
    """Alice's organization on the free plan, with small limits that tests can reach."""
    set_plan(settings, Tier.FREE, requests_per_minute=3, monthly_events=10)
    org.tier = Tier.FREE
    org.save(update_fields=["tier"])
    return org


@pytest.fixture
def steady_minute():
    """Start away from a minute boundary, so requests of one test share a rate window."""
    left = 60 - time.time() % 60
    if left < 5:
        time.sleep(left + 0.05)


@pytest.fixture
def warm_plans(db):
    """Read the plans once in this thread: other threads' connections may not see the
    test database's tables (SQLite in memory)."""
    limits.plan_limits(Tier.FREE)
