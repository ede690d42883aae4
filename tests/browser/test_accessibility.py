"""Every page through axe-core and the Content-Security-Policy, on a laptop and a
phone (issue 14 item 10, issue 12 item 4); the main flow by keyboard alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from alerts import services as alert_services
from alerts.models import RuleKind
from dashboard.funnels import Step, create_funnel
from telemetry.models import Event
from tests.alerts.conftest import store
from tests.browser.conftest import LAPTOP, PHONE, assert_accessible, shoot
from tests.factories import PASSWORD, make_app, make_org, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url("/accounts/login/")


def every_page() -> tuple[list[str], list[str]]:
    """(pages of a signed-in owner, pages of someone signed out), over an organization
    with an app that has events, a funnel, an alert rule and a channel."""
    owner = make_user("ada", is_superuser=True, is_staff=True)
    org = make_org(name="Acme Tools", owner=owner)
    app, _ = make_app(org, name="forge-cli")
    now = timezone.now()
    for hours in (1, 5, 30, 24 * 9):
        store(app, at=now - timedelta(hours=hours), n=3)
    store(app, at=now - timedelta(hours=2), n=2, success=False, command="test", version="1.3.0")
    event = Event.objects.filter(app=app).first()
    funnel = create_funnel(
        app, name="Build then test", steps=[Step("command_execution", "build"), Step("command_execution", "test")],
        window_seconds=3600, by=owner,
    )
    rule = alert_services.create_rule(app, by=owner, name="Quiet", kind=RuleKind.SILENCE, minutes=60)
    channel, _ = alert_services.create_channel(org, name="ops hook", kind="webhook", url="http://127.0.0.1:9/hook", by=owner)
    o = f"/orgs/{org.public_id}/"
    a = f"{o}apps/{app.public_id}/"
    signed_in = [
        "/orgs/", "/jobs/", "/accounts/password/", "/accounts/profile/",
        o, f"{o}?range=24h", f"{o}members/", f"{o}audit/", f"{o}apps/new/", f"{o}erase/", f"{o}settings/", f"{o}apps/",
        f"{o}channels/", f"{o}channels/new/", f"{o}channels/{channel.pk}/", f"{o}digest/",
        a, f"{a}?range=90d", f"{a}events/", f"{a}events/{event.event_id}/", f"{a}releases/", f"{a}platforms/",
        f"{a}export/", f"{a}health/", f"{a}commands/build/", f"{a}retention/", f"{a}funnels/", f"{a}funnels/new/",
        f"{a}funnels/{funnel.pk}/", f"{a}funnels/{funnel.pk}/edit/", f"{a}funnels/{funnel.pk}/delete/",
        f"{a}properties/", f"{a}credentials/", f"{a}settings/", f"{a}alerts/", f"{a}alerts/history/",
        f"{a}alerts/new/", f"{a}alerts/{rule.pk}/", f"{a}alerts/{rule.pk}/delete/",
        "/orgs/org_nobody/",  # 404, the project's own page
        "/admin/", "/admin/organizations/organization/",
    ]
    return signed_in, ["/accounts/login/", "/setup/"]


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_passes_axe_with_no_csp_violation(open_page, viewport):
    signed_in, signed_out = every_page()

    visitor = open_page(viewport=viewport)
    for url in signed_out:
        visitor.goto(url)
        assert_accessible(visitor)

    page = open_page(viewport=viewport)
    sign_in(page, "ada")
    for url in signed_in:
        page.goto(url)
        assert_accessible(page)
    # open_page fails the test at its end on any Content-Security-Policy violation.


def test_a_failed_sign_in_is_announced(open_page):
    make_user("ada")
    page = open_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    assert_accessible(page)
