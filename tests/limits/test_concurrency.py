"""Limits hold when many requests arrive at once (PostgreSQL: real concurrent connections)."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from django.db import connections
from django.test import Client

from organizations.models import Tier
from telemetry import limits
from telemetry.errors import IngestError
from telemetry.models import Event
from tests.factories import make_batch
from tests.limits.conftest import set_plan
from tests.signing import current_secret, ingest_path, signed_headers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 16


def run_at_once(work, *, threads: int = THREADS) -> list:
    """Run work() in many threads released together, each on its own connection."""
    barrier = threading.Barrier(threads)
    results: list = []
    errors: list = []

    def run():
        try:
            barrier.wait()
            results.extend(work())
        except Exception as exc:  # surfaced below: a thread's failure fails the test
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors, errors
    return results


def test_every_concurrent_request_gets_its_own_count(on_postgres, store, app, warm_plans):
    now = 1_800_000_010.0

    counts = run_at_once(lambda: [limits.count_request(app.pk, tier=Tier.FREE, now=now).count for _ in range(10)])

    # No lost update and no count handed out twice: exactly 1..160.
    assert sorted(counts) == list(range(1, THREADS * 10 + 1))
    assert sum(count <= 100 for count in counts) == 100


def test_concurrent_batches_never_pass_the_quota_by_more_than_one_batch(on_postgres, store, free_org, warm_plans, settings):
    set_plan(settings, Tier.FREE, monthly_events=100)
    now = time.time()

    def work():
        admitted = []
        for _ in range(10):
            try:
                limits.reserve_events(free_org.pk, tier=Tier.FREE, events=7, now=now)
                admitted.append(7)
            except IngestError as refused:
                assert refused.status == 429
        return admitted

    admitted = run_at_once(work)

    # Each batch is admitted only while the count is under 100: 14 batches reach
    # 98, the 15th crosses to 105, and all 145 others are refused.
    assert len(admitted) == 15
    assert limits.monthly_usage(free_org).used == 105


def test_room_given_back_under_concurrency_keeps_the_count_exact(on_postgres, store, free_org, warm_plans, settings):
    set_plan(settings, Tier.FREE, monthly_events=500)  # 160 batches of 4 new events would be 640

    def work():
        stored = []
        for _ in range(10):
            try:
                with limits.event_quota(free_org.pk, tier=Tier.FREE, events=9) as quota:
                    quota.record_stored(4)  # five of nine were duplicates
                    stored.append(4)
            except IngestError:
                pass
        return stored

    stored = run_at_once(work)

    used = limits.monthly_usage(free_org).used
    assert used == sum(stored)  # every unused room given back, none twice
    assert len(stored) < THREADS * 10  # the quota did refuse some
    assert used < 500 + 9  # and let through at most one batch beyond it


def test_concurrent_http_requests_get_exactly_the_plans_rate(on_postgres, store, free_org, app, steady_minute, settings):
    set_plan(settings, Tier.FREE, requests_per_minute=10, monthly_events=0)
    secret = current_secret(app)
    limits.plan_limits(Tier.FREE)
    bodies = [orjson.dumps(make_batch(3)) for _ in range(24)]
    lock = threading.Lock()

    def work():
        with lock:
            body = bodies.pop()
        response = Client().generic(
            "POST", ingest_path(app), body, content_type="application/json", **signed_headers(secret, body)
        )
        return [(response.status_code, int(response["X-RateLimit-Remaining"]))]

    answers = run_at_once(work, threads=24)

    assert sorted(status for status, _ in answers) == [200] * 10 + [429] * 14
    assert sorted(remaining for status, remaining in answers if status == 200) == list(range(10))
    assert Event.objects.for_app(app).count() == 30
