"""Alerts through a browser: an admin makes a rule (the form shows only what its kind
uses) and a webhook channel, sends a test; the firing rule shows on the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from alerts import rules
from alerts.models import Notification, Rule
from tests.alerts.conftest import store
from tests.browser.conftest import PHONE, shoot
from tests.factories import PASSWORD, make_app, make_org, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url("/accounts/login/")


def test_an_admin_sets_up_an_alert_and_a_channel(open_page):
    admin = make_user("ada")
    org = make_org(name="Acme Tools", owner=admin)
    app, _ = make_app(org, name="forge-cli")
    now = timezone.now()
    store(app, at=now - timedelta(minutes=45))

    page = open_page()
    sign_in(page, "ada")
    page.goto(f"/orgs/{org.public_id}/apps/{app.public_id}/")
    page.get_by_role("link", name="Alerts").click()
    page.get_by_role("link", name="New alert rule").click()
    page.get_by_label("Name").fill("Events stopped")
    page.get_by_label("Alert when").select_option("silence")
    expect(page.get_by_label("Factor")).to_be_hidden()  # volume only
    page.get_by_label("Period (minutes)").fill("30")
    shoot(page, "alert_rule_form")
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_text("Alert rule “Events stopped” created")).to_be_visible()

    rules.evaluate_rules(now=now, rules=Rule.objects.all())
    page.reload()
    expect(page.locator("td[data-label='State']").first).to_contain_text("Firing since")
    shoot(page, "alert_rules")

    page.get_by_role("link", name="channels").first.click()
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name").fill("ops hooks")
    page.get_by_label("URL").fill("https://hooks.example.com/clacks")
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_role("heading", name="Signing secret")).to_be_visible()
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test notification stored")).to_be_visible()
    assert Notification.objects.filter(kind="test", status="pending").count() == 1
    shoot(page, "alert_channel")

    phone = open_page(PHONE)
    sign_in(phone, "ada")
    phone.goto(f"/orgs/{org.public_id}/apps/{app.public_id}/alerts/history/")
    expect(phone.get_by_text("No events for 45 minutes")).to_be_visible()
    shoot(phone, "alert_history_phone")
