"""Ingest metrics: what each answer adds to the Prometheus counters and histograms."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from organizations.models import Tier
from tests.factories import make_batch, make_event
from tests.limits.conftest import set_plan


class Metrics:
    """Differences of sample values since the fixture was created."""

    NAMES = {
        "accepted": ("clacks_ingest_events_accepted_total", {}),
        "duplicates": ("clacks_ingest_events_duplicate_total", {}),
        "invalid_schema": ("clacks_ingest_events_rejected_total", {"reason": "invalid_schema"}),
        "invalid_timestamp": ("clacks_ingest_events_rejected_total", {"reason": "invalid_timestamp"}),
        "batches_200": ("clacks_ingest_batches_total", {"status": "200"}),
        "batches_207": ("clacks_ingest_batches_total", {"status": "207"}),
        "batches_400": ("clacks_ingest_batches_total", {"status": "400"}),
        "batches_401": ("clacks_ingest_batches_total", {"status": "401"}),
        "batches_409": ("clacks_ingest_batches_total", {"status": "409"}),
        "batches_429": ("clacks_ingest_batches_total", {"status": "429"}),
        "batches_204": ("clacks_ingest_batches_total", {"status": "204"}),
        "size_count": ("clacks_ingest_batch_size_events_count", {}),
        "size_sum": ("clacks_ingest_batch_size_events_sum", {}),
        "size_le_5": ("clacks_ingest_batch_size_events_bucket", {"le": "5.0"}),
        "duration_count": ("clacks_ingest_duration_seconds_count", {}),
        "auth_invalid_signature": ("clacks_ingest_auth_failures_total", {"reason": "invalid_signature"}),
        "auth_nonce_reused": ("clacks_ingest_auth_failures_total", {"reason": "nonce_reused"}),
        "rate_limited": ("clacks_ingest_rate_limited_total", {"reason": "rate_limit_exceeded"}),
    }

    def __init__(self):
        self.start = {key: self._value(key) for key in self.NAMES}

    def _value(self, key: str) -> float:
        name, labels = self.NAMES[key]
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def delta(self, key: str) -> float:
        return self._value(key) - self.start[key]


@pytest.fixture
def metrics(db):
    return Metrics()


def test_a_stored_batch_counts_its_events_its_size_and_its_time(signed_post, app, metrics):
    assert signed_post(app, make_batch(4)).status_code == 200

    assert metrics.delta("accepted") == 4
    assert metrics.delta("duplicates") == 0
    assert metrics.delta("batches_200") == 1
    assert metrics.delta("size_count") == 1
    assert metrics.delta("size_sum") == 4
    assert metrics.delta("size_le_5") == 1
    assert metrics.delta("duration_count") == 1


def test_a_retried_batch_counts_its_duplicates(signed_post, app, metrics):
    batch = make_batch(3)
    signed_post(app, batch)
    signed_post(app, batch)

    assert metrics.delta("accepted") == 6  # as the responses say: duplicates are accepted
    assert metrics.delta("duplicates") == 3
    assert metrics.delta("batches_200") == 2


def test_rejected_events_are_counted_by_reason(signed_post, app, metrics):
    batch = make_batch(2)
    batch["events"] += [make_event(user_id="alice@example.com"), make_event(user_id="bob"), make_event(timestamp="2999-01-01T00:00:00Z")]
    signed_post(app, batch)
    signed_post(app, {"events": [make_event(user_id="carol")]})  # every event rejected: 400

    assert metrics.delta("accepted") == 2
    assert metrics.delta("invalid_schema") == 3
    assert metrics.delta("invalid_timestamp") == 1
    assert metrics.delta("batches_207") == 1
    assert metrics.delta("batches_400") == 1
    assert metrics.delta("size_sum") == 6


def test_authentication_failures_are_counted_by_reason(signed_post, app, metrics):
    signed_post(app, make_batch(1), key="wrong secret")
    signed_post(app, make_batch(1), nonce="d9e1c7c4-0b7e-4f4e-9b1e-8f2d0c1a2b3c")
    signed_post(app, make_batch(1), nonce="d9e1c7c4-0b7e-4f4e-9b1e-8f2d0c1a2b3c")

    assert metrics.delta("auth_invalid_signature") == 1
    assert metrics.delta("auth_nonce_reused") == 1
    assert metrics.delta("batches_401") == 1
    assert metrics.delta("batches_409") == 1
    assert metrics.delta("duration_count") == 3
    assert metrics.delta("size_count") == 1  # only the batch that was judged


def test_rate_limited_requests_are_counted(signed_post, app, org, settings, metrics):
    settings.CLACKS_SHARED_STORE = "database"
    set_plan(settings, Tier.FREE, requests_per_minute=1)
    org.tier = Tier.FREE
    org.save(update_fields=["tier"])
    from telemetry import limits

    limits.forget_plans()
    # Three requests inside 60 s: at least two share a minute, so at least one is refused.
    statuses = [signed_post(app, make_batch(1)).status_code for _ in range(3)]
    limits.forget_plans()

    assert statuses.count(429) >= 1
    assert metrics.delta("rate_limited") == statuses.count(429)
    assert metrics.delta("batches_429") == statuses.count(429)


def test_do_not_track_is_counted_as_a_204_and_nothing_else(signed_post, app, metrics):
    assert signed_post(app, make_batch(2), headers={"DNT": "1"}).status_code == 204

    assert metrics.delta("batches_204") == 1
    assert metrics.delta("accepted") == 0
    assert metrics.delta("size_count") == 0


def test_labels_stay_bounded_without_the_per_app_setting(signed_post, app):
    signed_post(app, make_batch(1))

    accepted = [sample for metric in REGISTRY.collect() for sample in metric.samples if sample.name == "clacks_ingest_events_accepted_total"]
    assert [sample.labels for sample in accepted] == [{}]
