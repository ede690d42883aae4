"""Every page through axe-core and the Content-Security-Policy, on a laptop and a
phone (issue 14 item 10, issue 12 item 4); the main flow by keyboard alone."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from alerts import services as alert_services
from alerts.models import RuleKind
from dashboard.funnels import Step, create_funnel
from telemetry.models import Event
from tests.alerts.conftest import store
from tests.browser.conftest import LAPTOP, PHONE, assert_accessible, shoot
from tests.browser.test_first_run import post_signed_batch, sdk_event
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
        f"{a}alerts/new/", f"{a}alerts/{rule.pk}/",
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


# --- The main flow by keyboard alone -------------------------------------------------------

KEYBOARD_PASSWORD = "plum-tree-harbour-42"


def tab_to(page: Page, test: str, what: str, *, backwards: bool = False, limit: int = 120) -> None:
    """Press Tab (or Shift+Tab) until the focused element passes `test` (a JS expression
    over `el`), then check that it shows a focus ring."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!(el && ({test})); }})()"):
            outline = page.evaluate("(() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; })()")
            assert outline[0] != "none" and outline[1] != "0px", f"{what} has no visible focus ring"
            return
    raise AssertionError(f"{what} cannot be reached with the Tab key")


def tab_to_field(page: Page, label: str) -> None:
    tab_to(page, f"el.labels && [...el.labels].some((l) => l.textContent.trim().startsWith({json.dumps(label)}))", label)


def tab_to_control(page: Page, text: str, **kwargs) -> None:
    tab_to(page, f"el.matches('button, a') && el.textContent.trim().startsWith({json.dumps(text)})", text, **kwargs)


def tab_to_link(page: Page, path: str) -> None:
    tab_to(page, f"el.matches('a[href]') && new URL(el.href).pathname === {json.dumps(path)}", f"a link to {path}")


def test_the_main_flow_by_keyboard_alone(open_page, live_server):
    page = open_page()
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/setup/")

    # --- First admin. ---
    tab_to_field(page, "Username")
    page.keyboard.type("ada")
    tab_to_field(page, "Password")
    page.keyboard.type(KEYBOARD_PASSWORD)
    tab_to_field(page, "Password confirmation")
    page.keyboard.type(KEYBOARD_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Organizations", exact=True)).to_be_visible()

    # --- An organization and an app. ---
    tab_to_field(page, "Organization name")
    page.keyboard.type("Acme Tools")
    page.keyboard.press("Enter")
    expect(page.get_by_label("App name")).to_be_visible()
    tab_to_field(page, "App name")
    page.keyboard.type("forge-cli")
    page.keyboard.press("Enter")

    # --- Credentials: copied with the keyboard. ---
    expect(page.get_by_role("heading", name="Copy these now")).to_be_visible()
    org_id = page.locator("#org-id").inner_text().strip()
    app_id = page.locator("#app-id").inner_text().strip()
    token = page.locator("#issued-token").inner_text().strip()
    secret = page.locator("#issued-secret").inner_text().strip()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    tab_to_control(page, "Copy token")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert_accessible(page)

    now = datetime.now(dt_timezone.utc)
    batch = [sdk_event(now - timedelta(minutes=m), os="linux", version="1.0.0", data={"command": "build", "success": True}) for m in (3, 2)]
    status, _ = post_signed_batch(live_server.url, org_id=org_id, app_id=app_id, token=token, secret=secret, events=batch)
    assert status == 200

    # --- Analytics: the chart's figures by arrow keys, then the live view. ---
    app_url = f"/orgs/{org_id}/apps/{app_id}/"
    tab_to_link(page, app_url)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}{app_url}")
    tab_to(page, "el.classList.contains('chart-plot')", "the events chart")
    tip = page.locator(".chart-tip")
    expect(tip).to_be_visible()
    page.keyboard.press("End")
    expect(tip).to_contain_text("2 events (previous period: 0)")
    page.keyboard.press("ArrowLeft")
    expect(tip).not_to_contain_text("2 events")
    assert_accessible(page)
    shoot(page, "keyboard-chart-tip")

    page.evaluate("window.stillTheSamePage = true")
    tab_to_control(page, "Live updates", backwards=True)
    page.keyboard.press("Space")
    expect(page.locator(".live-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("status").filter(has_text="Live updates on")).to_have_count(1)
    more = [sdk_event(now - timedelta(minutes=1), os="linux", version="1.0.0", data={"command": "test", "success": True}) for _ in range(3)]
    status, _ = post_signed_batch(live_server.url, org_id=org_id, app_id=app_id, token=token, secret=secret, events=more)
    assert status == 200
    # Counted from the events at once, from the rollups as ingest writes them: a refresh or two.
    expect(page.locator(".live-count strong")).to_have_text("5", timeout=20_000)
    expect(page.locator(".summary .stat-value").first).to_have_text("5", timeout=20_000)
    assert page.evaluate("window.stillTheSamePage === true"), "the live view reloaded the page"
    assert_accessible(page)

    # --- Retention: the app's own, saved from the keyboard. ---
    tab_to_link(page, f"{app_url}settings/")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}{app_url}settings/")
    tab_to(page, "el.matches('.retention-form input[type=radio]')", "the retention choice")
    for _ in range(8):
        if page.evaluate("document.activeElement.labels[0].textContent.trim()") == "30 days":
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.checked && document.activeElement.labels[0].textContent.trim()") == "30 days"
    tab_to_control(page, "Save retention")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#retention")).to_contain_text("Keeps events for 30 days")
    assert_accessible(page)
