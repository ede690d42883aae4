"""Each tier's limits: settings by default, the admin's Plan rows field by field."""

from __future__ import annotations

import pytest

from organizations.models import Tier
from telemetry import limits
from telemetry.databases import events_connection
from telemetry.models import Plan
from tests.factories import make_user
from tests.limits.conftest import set_plan


@pytest.fixture
def admin_client(client, db):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def plan(tier: str) -> Plan:
    limits.ensure_plans()
    return Plan.objects.get(tier=tier)


def test_the_settings_give_each_tier_its_defaults(db):
    assert limits.plan_limits(Tier.FREE) == limits.Limits(requests_per_minute=100, monthly_events=10_000)
    assert limits.plan_limits(Tier.PRO) == limits.Limits(requests_per_minute=1_000, monthly_events=1_000_000)
    assert limits.plan_limits(Tier.ENTERPRISE) == limits.Limits(requests_per_minute=10_000, monthly_events=100_000_000)
    assert limits.plan_limits(Tier.SELF_HOSTED) == limits.Limits(requests_per_minute=60_000, monthly_events=None)


def test_the_settings_name_exactly_the_tiers(settings):
    assert sorted(settings.CLACKS_PLANS) == sorted(Tier.values)


def test_changed_settings_apply(db, settings):
    set_plan(settings, Tier.PRO, requests_per_minute=7, monthly_events=0)

    assert limits.plan_limits(Tier.PRO) == limits.Limits(requests_per_minute=7, monthly_events=None)


def test_a_plan_field_overrides_its_setting_and_an_empty_one_follows_it(db, settings):
    free = plan(Tier.FREE)
    free.monthly_events = 50
    free.save()
    set_plan(settings, Tier.FREE, requests_per_minute=9)

    assert limits.plan_limits(Tier.FREE) == limits.Limits(requests_per_minute=9, monthly_events=50)


def test_a_plan_of_zero_events_has_no_quota(db, settings):
    free = plan(Tier.FREE)
    free.monthly_events = 0
    free.save()

    assert limits.plan_limits(Tier.FREE).monthly_events is None


def test_an_unknown_tier_gets_the_free_plan(db):
    assert limits.plan_limits("legacy") == limits.plan_limits(Tier.FREE)


def test_plans_are_read_once_per_cache_period(db, django_assert_num_queries):
    with django_assert_num_queries(1, connection=events_connection):
        limits.plan_limits(Tier.FREE)
        limits.plan_limits(Tier.PRO)


def test_every_tier_gets_a_row_even_after_rows_went_missing(db):
    Plan.objects.all().delete()
    limits.ensure_plans()
    limits.ensure_plans()

    assert sorted(Plan.objects.values_list("tier", flat=True)) == sorted(Tier.values)


def test_the_admin_lists_every_tier_with_the_limits_in_force(admin_client):
    Plan.objects.filter(tier=Tier.PRO).delete()

    page = admin_client.get("/admin/telemetry/plan/")

    assert page.status_code == 200
    text = page.content.decode()
    for label in ("Free", "Pro", "Enterprise", "Self-hosted"):
        assert f">{label} plan<" in text or f">{label}<" in text
    assert "10,000 (setting)" in text
    assert "no quota (setting)" in text


def test_an_admin_edit_applies_at_once(admin_client):
    free = plan(Tier.FREE)
    limits.plan_limits(Tier.FREE)  # cached in this process before the edit

    response = admin_client.post(
        f"/admin/telemetry/plan/{free.pk}/change/", {"requests_per_minute": "25", "monthly_events": "5000"}
    )

    assert response.status_code == 302
    assert limits.plan_limits(Tier.FREE) == limits.Limits(requests_per_minute=25, monthly_events=5000)


def test_the_admin_refuses_a_rate_of_zero_with_a_message(admin_client):
    free = plan(Tier.FREE)

    response = admin_client.post(
        f"/admin/telemetry/plan/{free.pk}/change/", {"requests_per_minute": "0", "monthly_events": ""}
    )

    assert response.status_code == 200
    assert "greater than or equal to 1" in response.content.decode()
    assert limits.plan_limits(Tier.FREE).requests_per_minute == 100
