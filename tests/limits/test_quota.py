"""Events per organization per calendar month: whole batches admitted while under the quota."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone

import pytest

from organizations.models import Tier
from telemetry import limits
from telemetry.errors import IngestError
from telemetry.models import Event, MonthlyUsage
from tests.factories import make_app, make_batch, make_event, make_org
from tests.limits.conftest import set_plan

pytestmark = pytest.mark.usefixtures("steady_minute")


def usage(org) -> int:
    return limits.monthly_usage(org).used


def test_a_batch_that_starts_under_the_quota_is_stored_whole(store, signed_post, free_org, app, settings):
    set_plan(settings, Tier.FREE, requests_per_minute=100)
    first = signed_post(app, make_batch(8))
    crossing = signed_post(app, make_batch(5))  # 8 < 10 when it arrives: admitted in full

    assert (first.status_code, crossing.status_code) == (200, 200)
    assert Event.objects.for_app(app).count() == 13
    assert usage(free_org) == 13


def test_the_batch_after_the_quota_gets_429_until_the_month_ends(store, signed_post, free_org, app, settings):
    set_plan(settings, Tier.FREE, requests_per_minute=100)
    signed_post(app, make_batch(10))

    now = time.time()
    refused = signed_post(app, make_batch(1))

    assert refused.status_code == 429
    body = refused.json()
    assert body["error"]["code"] == "quota_exceeded"
    assert "quota of 10 new events for " in body["error"]["message"]
    this_month = limits.month_of(datetime.now(timezone.utc))
    assert abs(body["retry_after"] - (limits.month_end_timestamp(this_month) - now)) <= 2
    assert refused["Retry-After"] == str(body["retry_after"])
    assert refused["X-RateLimit-Remaining"] == "98"  # quota refusals still carry the rate headers
    assert Event.objects.for_app(app).count() == 10
    assert usage(free_org) == 10


def test_duplicates_and_rejected_events_do_not_use_the_quota(store, signed_post, free_org, app, settings):
    set_plan(settings, Tier.FREE, requests_per_minute=100)
    batch = make_batch(3)
    signed_post(app, batch)
    retry = signed_post(app, batch)
    partial = signed_post(app, {"events": [make_event(), {"event_id": "not a uuid"}]})
    all_rejected = signed_post(app, {"events": [{"schema_version": "2.0"}]})

    assert (retry.status_code, retry.json()["duplicates"]) == (200, 3)
    assert partial.status_code == 207
    assert all_rejected.status_code == 400
    assert usage(free_org) == 4


def test_the_quota_is_shared_by_the_organizations_apps(store, signed_post, free_org, app, settings):
    set_plan(settings, Tier.FREE, requests_per_minute=100)
    other, credential = make_app(free_org, name="other-cli")
    signed_post(app, make_batch(6))
    signed_post(other, make_batch(4), key=credential.secret)

    assert signed_post(other, make_batch(1), key=credential.secret).status_code == 429
    assert signed_post(app, make_batch(1)).status_code == 429


def test_other_organizations_are_not_affected(store, signed_post, free_org, app, settings, charlie):
    set_plan(settings, Tier.FREE, requests_per_minute=100)
    elsewhere = make_org(name="Charlie Org", owner=charlie, tier=Tier.FREE)
    their_app, credential = make_app(elsewhere, name="their-cli")
    signed_post(app, make_batch(10))

    assert signed_post(their_app, make_batch(10), key=credential.secret).status_code == 200
    assert usage(elsewhere) == 10


def test_a_plan_without_a_quota_counts_nothing(store, signed_post, app):
    assert signed_post(app, make_batch(50)).status_code == 200  # self-hosted: no quota by default

    summary = limits.monthly_usage(app.organization)
    assert (summary.used, summary.quota, summary.percent, summary.remaining) == (None, None, None, None)
    assert not summary.exceeded
    assert MonthlyUsage.objects.count() == 0


def test_the_quota_starts_over_with_the_calendar_month(store, free_org):
    november = datetime(2031, 11, 30, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    december = datetime(2031, 12, 1, 0, 0, 0, tzinfo=timezone.utc).timestamp()

    limits.reserve_events(free_org.pk, tier=Tier.FREE, events=10, now=november)
    with pytest.raises(IngestError) as refused:
        limits.reserve_events(free_org.pk, tier=Tier.FREE, events=1, now=november)
    limits.reserve_events(free_org.pk, tier=Tier.FREE, events=1, now=december)

    assert refused.value.status == 429 and refused.value.retry_after == 1
    assert limits.monthly_usage(free_org, now=datetime.fromtimestamp(december, tz=timezone.utc)).used == 1
    assert limits.monthly_usage(free_org, now=datetime.fromtimestamp(november, tz=timezone.utc)).used == 10


def test_a_batch_that_fails_to_store_gives_its_room_back(store, free_org):
    with pytest.raises(RuntimeError):
        with limits.event_quota(free_org.pk, tier=Tier.FREE, events=7):
            raise RuntimeError("storage failed")

    assert limits.monthly_usage(free_org).used == 0


def test_months_are_utc_calendar_months():
    late_in_december = datetime(2031, 12, 31, 23, 0, tzinfo=timezone.utc)
    still_december_in_new_york = datetime.fromisoformat("2031-12-31T20:00:00-05:00")

    assert limits.month_of(late_in_december) == date(2031, 12, 1)
    assert limits.month_of(still_december_in_new_york) == date(2032, 1, 1)  # 01:00 UTC
    assert limits.next_month(date(2031, 12, 1)) == date(2032, 1, 1)
    assert limits.month_end_timestamp(date(2031, 12, 1)) == 1956528000  # 2032-01-01T00:00:00Z
