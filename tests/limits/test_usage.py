"""What the dashboard shows: this month's new events against the quota."""

from __future__ import annotations

from datetime import datetime, timezone

from django.template.loader import render_to_string
from django.urls import reverse

from organizations.models import Tier
from telemetry import limits
from tests.factories import make_batch
from tests.limits.conftest import set_plan

NOW = datetime(2031, 11, 20, 12, 0, tzinfo=timezone.utc)


def render(org, now=NOW) -> str:
    return " ".join(render_to_string("telemetry/_usage.html", {"usage": limits.monthly_usage(org, now=now)}).split())


def test_usage_counts_what_ingest_reserved_this_month(store, free_org):
    limits.reserve_events(free_org.pk, tier=Tier.FREE, events=4, now=NOW.timestamp())

    summary = limits.monthly_usage(free_org, now=NOW)

    assert summary.used == 4
    assert (summary.quota, summary.remaining, summary.percent, summary.exceeded) == (10, 6, 40, False)
    assert summary.resets_at == datetime(2031, 12, 1, tzinfo=timezone.utc)


def test_the_partial_shows_usage_against_the_quota(store, free_org, settings):
    set_plan(settings, Tier.FREE, monthly_events=10_000)
    limits.reserve_events(free_org.pk, tier=Tier.FREE, events=2_500, now=NOW.timestamp())

    html = render(free_org)

    assert "<strong>2,500</strong> of 10,000 events stored in November 2031 (25%)" in html
    assert 'value="25"' in html
    assert "7,500 left; the count starts over on 1 December 2031, 00:00 UTC" in html


def test_the_partial_says_when_the_quota_is_used_up(store, free_org):
    limits.reserve_events(free_org.pk, tier=Tier.FREE, events=12, now=NOW.timestamp())

    html = render(free_org)

    assert "<strong>12</strong> of 10 events" in html
    assert "(100%)" in html  # one batch may pass the quota; the meter stops at full
    assert "ingest answers 429 to new batches until 1 December 2031, 00:00 UTC" in html


def test_the_partial_says_when_there_is_no_quota(store, org):
    html = render(org)

    assert "This organization's plan has no monthly event quota." in html


def test_the_partial_says_when_the_count_cannot_be_read(free_org, settings):
    settings.CLACKS_SHARED_STORE = "redis"  # at an address where nothing listens (below)
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }

    assert "cannot be read right now" in render(free_org)


def test_members_see_the_months_usage_on_the_organization_overview(store, client, signed_post, free_org, app, bob):
    signed_post(app, make_batch(4))
    client.force_login(bob)  # a viewer

    page = client.get(reverse("dashboard:org_overview", kwargs={"org_id": free_org.public_id}))

    assert page.status_code == 200
    html = " ".join(page.content.decode().split())
    assert "Events this month" in html
    assert "<strong>4</strong> of 10 events stored in" in html


def test_outsiders_see_no_usage(client, free_org, charlie):
    client.force_login(charlie)

    page = client.get(reverse("dashboard:org_overview", kwargs={"org_id": free_org.public_id}))

    assert page.status_code == 404
    assert "Events this month" not in page.content.decode()


def test_an_organization_without_a_quota_gets_no_usage_card(client, org, alice):
    client.force_login(alice)

    page = client.get(reverse("dashboard:org_overview", kwargs={"org_id": org.public_id}))

    assert page.status_code == 200
    assert "Events this month" not in page.content.decode()
