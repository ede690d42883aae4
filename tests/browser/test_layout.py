"""Every page at 390 px and 1280 px: no horizontal page scroll, and the header folds on a phone.

The pages come from the URL configuration itself (config/urls.py and every app's
urls.py), filled in with real objects, so a page added later is visited too or
the test names it. Pages that answer only POST, answer JSON, or belong to
Django's admin are listed in NOT_PAGES with the reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from playwright.sync_api import Page, expect

from alerts import services as alert_services
from alerts.models import ChannelKind, RuleKind
from dashboard.funnels import Step, create_funnel
from organizations import services
from organizations.models import Role
from telemetry.models import Event
from tests.browser.conftest import LAPTOP, PHONE, path_of, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Route names that are not pages a person opens, and why.
NOT_PAGES = {
    "ingest": "SDK endpoint (POST, JSON)",
    "events_batch": "SDK endpoint (POST, JSON)",
    "health": "probe (JSON)",
    "live": "probe (JSON)",
    "ready": "probe (JSON)",
    "metrics": "Prometheus export",
    "logout": "POST only",
    "setup": "answers 404 once a user exists; tests/browser/test_first_run.py checks it",
    "member_invite": "POST only",
    "invitation_revoke": "POST only",
    "member_role": "POST only",
    "member_remove": "POST only",
    "org_retention": "POST only",
    "credential_reveal": "POST only",
    "credentials_rotate": "POST only",
    "app_retention": "POST only",
    "channel_test": "POST only",
    "channel_enable": "POST only",
    "rule_delete": "POST only",
    "channel_delete": "POST only",
    "checklist_dismiss": "POST only",
    "home": "redirects to the organization's analytics",
    "session_end": "POST only",
    "session_end_others": "POST only",
    "member_unlock": "POST only",
    "member_reset_link": "POST only",
    "require_two_factor": "POST only",
    "sso_domain_remove": "POST only",
    "share_link_revoke": "POST only",
    "key_revoke": "POST only",
    "two_factor_start": "POST only",
    "two_factor_confirm": "POST only",
    "two_factor_disable": "POST only",
    "two_factor_recovery_codes": "POST only",
    "two_factor_verify": "asks for a code only while a sign-in waits for one (tests/browser/test_two_factor.py)",
    "two_factor_qr": "an SVG image, while enrolment is under way",
    "oidc_login": "redirects to the identity provider; 404 while single sign-on is off (tests/browser/test_sso.py)",
    "oidc_callback": "the identity provider's redirect back (tests/browser/test_sso.py)",
    "sso_domains": "404 while single sign-on is off (tests/browser/test_sso.py)",
    "password_reset": "404 while no SMTP server is set (tests/organizations/test_recovery.py)",
    "password_reset_sent": "404 while no SMTP server is set (tests/organizations/test_recovery.py)",
    "password_reset_confirm": "needs a live reset token (tests/browser/test_two_factor.py, tests/organizations/test_recovery.py)",
    "password_reset_complete": "shown after a reset (tests/organizations/test_recovery.py)",
    "app_live": "an HTML fragment the overview swaps in (tests/dashboard/test_live.py)",
    "shared_page": "public page behind a share link's token (tests/browser/test_share_links.py)",
    "shared_badge": "SVG image behind a share link's token",
}


def routes() -> dict[str, tuple[str, list[str]]]:
    """{route name: (namespaced name, its URL parameters)} for every named route outside Django's admin."""
    found: dict[str, tuple[str, list[str]]] = {}

    def walk(patterns, namespace: str | None):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.app_name != "admin":
                    walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name and not str(entry.pattern).startswith(("api/v1/", "^api/v1/")):
                # (the REST API answers JSON; its Swagger page is the sidecar's, tests/api)
                full = f"{namespace}:{entry.name}" if namespace else entry.name
                found[entry.name] = (full, list(entry.pattern.regex.groupindex))

    walk(get_resolver().url_patterns, None)
    return found


@pytest.fixture
def site(org, app, alice, bob):
    """One of everything a page can show: events, a funnel, an alert rule, a channel, an invitation."""
    alice.is_staff = alice.is_superuser = True
    alice.save(update_fields=["is_staff", "is_superuser"])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    long_value = "a-rather-long-command-name/with/several/parts-that-does-not-wrap-easily"
    events = []
    for i in range(60):
        when = now - timedelta(hours=i * 5)
        version = ("1.2.0", "1.3.0-beta.1+build.20260101")[i % 2]
        command = ("build", "deploy", long_value)[i % 3]
        events.append(sdk_event(
            when, user=f"user-with-a-long-identifier-{i % 9}", session=f"session-{i % 11}-0123456789abcdef",
            data={"command": command, "success": i % 7 != 0, "duration_ms": 100 + i, "flags": ["--verbose"]},
            os=("linux", "macos", "windows")[i % 3], version=version,
        ))  # fmt: skip
    store(app, *events, now=now)
    funnel = create_funnel(
        app, name="Init to deploy", steps=[Step("command_execution", "build"), Step("command_execution", "deploy")],
        window_seconds=86400, by=alice,
    )  # fmt: skip
    rule = alert_services.create_rule(app, name="Silence for ten minutes", kind=RuleKind.SILENCE, minutes=10, by=alice)
    channel, _ = alert_services.create_channel(
        org, name="Team webhook", kind=ChannelKind.WEBHOOK, url="http://127.0.0.1:9/hook", by=alice
    )
    services.invite_member(org, role=Role.ADMIN, email="newcomer@example.com", by=alice)
    return {
        "org_id": org.public_id,
        "app_id": app.public_id,
        "event_id": str(Event.objects.filter(app=app).order_by("-timestamp").values_list("event_id", flat=True)[0]),
        "funnel_id": funnel.pk,
        "rule_id": rule.pk,
        "channel_id": channel.pk,
        "command": long_value,
        "token": services.invite_member(org, role=Role.VIEWER, by=alice).token,
    }


def page_paths(site: dict) -> list[tuple[str, str]]:
    """(route name, path) of every page."""
    paths = []
    for name, (full, params) in sorted(routes().items()):
        if name in NOT_PAGES:
            continue
        missing = [param for param in params if param not in site]
        assert not missing, f"route {name!r} needs {missing}: give them in site() or a reason in NOT_PAGES"
        paths.append((name, reverse(full, kwargs={param: site[param] for param in params})))
    return paths


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#site-menu")).to_have_count(1)


# Boxes that scroll sideways now: each must be reachable by keyboard and named, unless the
# links inside it already take the focus (an app's menu on a phone).
SCROLLERS = """() => Array.from(document.querySelectorAll("body *")).filter((el) => {
  const style = getComputedStyle(el);
  return ["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
}).map((el) => ({
  what: el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + String(el.className).split(" ").join("."),
  reachable: el.tabIndex >= 0 || el.matches("nav"),
  named: el.matches("nav") || (el.getAttribute("role") === "region" && !!(el.getAttribute("aria-label") || el.getAttribute("aria-labelledby"))),
}))"""


def unreachable_scrollers(page: Page) -> list[str]:
    return [box["what"] for box in page.evaluate(SCROLLERS) if not (box["reachable"] and box["named"])]


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_fits_the_screen(open_page, site, viewport):
    name = "laptop" if viewport is LAPTOP else "phone"
    paths = page_paths(site)
    assert len(paths) >= 30, paths  # the routes really were found

    anonymous = open_page(viewport=viewport)
    anonymous.goto("/accounts/login/")
    assert overflow(anonymous) <= 0, "/accounts/login/ scrolls sideways"
    anonymous.goto(f"/invite/{site['token']}/")
    assert overflow(anonymous) <= 0, "the invitation page scrolls sideways"

    page = open_page(viewport=viewport)
    sign_in(page, "alice")
    too_wide, hidden_scrollers = {}, {}
    for route, path in paths:
        response = page.goto(path)
        assert response.status == 200, f"{path}: {response.status}"
        shoot(page, f"layout-{name}-{route}")
        extra = overflow(page)
        if extra > 0:
            too_wide[path_of(page)] = extra
        if unreachable := unreachable_scrollers(page):
            hidden_scrollers[path_of(page)] = unreachable
    assert too_wide == {}, f"pages wider than {viewport['width']} px (by px)"
    assert hidden_scrollers == {}, "boxes that scroll sideways but are not a focusable, labelled region"


def test_on_a_phone_the_header_is_one_menu(open_page, site):
    page = open_page(viewport=PHONE)
    sign_in(page, "alice")
    page.goto(f"/orgs/{site['org_id']}/apps/{site['app_id']}/")
    org_nav = page.get_by_role("navigation", name="Organization Alice Org")
    expect(org_nav).to_be_hidden()
    page.get_by_text("Menu", exact=True).click()
    expect(org_nav).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    shoot(page, "layout-phone-menu-open")
    page.keyboard.press("Escape")
    expect(org_nav).to_be_hidden()
    # The app's own navigation stays in the page, one row.
    expect(page.get_by_role("navigation", name="my-cli").get_by_role("link", name="Overview")).to_be_visible()


def test_on_a_laptop_the_header_shows_the_organization_and_the_app_menu_below(open_page, site):
    page = open_page(viewport=LAPTOP)
    sign_in(page, "alice")
    page.goto(f"/orgs/{site['org_id']}/apps/{site['app_id']}/settings/")
    org_nav = page.get_by_role("navigation", name="Organization Alice Org")
    expect(org_nav).to_be_visible()
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    expect(org_nav.get_by_role("link", name="Apps")).to_have_attribute("aria-current", "true")
    app_nav = page.get_by_role("navigation", name="my-cli")
    expect(app_nav.get_by_role("link", name="App settings")).to_have_attribute("aria-current", "page")
    # No label appears in both menus.
    org_labels = set(org_nav.get_by_role("link").all_inner_texts())
    app_labels = set(app_nav.get_by_role("link").all_inner_texts())
    assert org_labels & app_labels == set()
    # The header is one row: every link of the organization's menu on the same line.
    tops = {round(box["y"]) for box in (link.bounding_box() for link in org_nav.get_by_role("link").all())}
    assert len(tops) == 1, tops
    shoot(page, "layout-laptop-app-settings")


def test_a_viewer_sees_the_same_hierarchy_without_the_admin_pages(open_page, site):
    page = open_page(viewport=LAPTOP)
    sign_in(page, "bob")
    page.goto(f"/orgs/{site['org_id']}/apps/{site['app_id']}/")
    org_nav = page.get_by_role("navigation", name="Organization Alice Org")
    expect(org_nav.get_by_role("link")).to_have_text(["Analytics", "Apps", "Members", "Digest"])


def test_the_events_table_fits_a_laptop_and_is_cards_on_a_phone(open_page, site):
    events = f"/orgs/{site['org_id']}/apps/{site['app_id']}/events/"
    laptop = open_page(viewport=LAPTOP)
    sign_in(laptop, "alice")
    laptop.goto(events)
    box = laptop.locator(".table-scroll", has=laptop.locator("table.events-table"))
    widths = box.evaluate(
        "el => [el.scrollWidth, el.clientWidth, ...Array.from(el.querySelectorAll('thead th'), (th) => th.textContent + ' ' + th.offsetWidth)]"
    )
    assert widths[0] <= widths[1], f"the events table scrolls sideways at 1280 px: {widths}"
    expect(laptop.get_by_role("columnheader", name="Session")).to_be_visible()
    expect(box).not_to_have_attribute("tabindex", "0")  # nothing to scroll: no extra tab stop

    phone = open_page(viewport=PHONE)
    sign_in(phone, "alice")
    phone.goto(events)
    first = phone.locator("table.events-table tbody tr").first
    # One card per event: every cell on its own line, labelled, the user and session included.
    expect(first.locator('td[data-label="User"]')).to_be_visible()
    expect(first.locator('td[data-label="Session"]')).to_be_visible()
    assert first.locator("td").first.evaluate("el => getComputedStyle(el).display") == "block"
