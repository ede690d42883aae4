"""Share links in a browser: an admin makes a link with a password, a visitor opens it under a
strict Content-Security-Policy, and the revoked link is gone (docs/sharing.md)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What the server is about to send: nothing inline may run or apply.
STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'"


def sign_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#site-menu")).to_have_count(1)


def with_strict_csp(route: Route) -> None:
    response = route.fetch()
    route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})


def test_an_admin_shares_a_page_with_a_password_and_revokes_it(open_page, app):
    now = datetime.now(timezone.utc)
    store(app, *[sdk_event(now - timedelta(minutes=5 + i), user=user) for i, user in enumerate("aab")], now=now)
    admin = open_page()
    sign_in(admin)
    admin.goto(f"/orgs/{app.organization.public_id}/apps/{app.public_id}/")
    admin.locator("nav.subnav-app").get_by_role("link", name="Share").click()
    expect(admin.get_by_role("heading", name="Share links", level=1)).to_be_visible()
    admin.get_by_label("Platforms: users, events and failure rate per OS and architecture").check()
    admin.get_by_label("Password", exact=True).fill("tea and biscuits")
    admin.get_by_label("Expires after (days)").fill("7")
    admin.get_by_role("button", name="Create link").click()
    url = admin.locator("#issued-url").inner_text()
    shoot(admin, "share-links-issued")

    visitor = open_page()
    violations: list[str] = []
    visitor.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    visitor.route("**/*", with_strict_csp)
    visitor.goto(url)
    expect(visitor.get_by_role("heading", name="This shared page has a password")).to_be_visible()
    visitor.get_by_label("Password").fill("coffee")
    visitor.get_by_role("button", name="Open").click()
    expect(visitor.get_by_text("That password is not right.")).to_be_visible()
    visitor.get_by_label("Password").fill("tea and biscuits")
    visitor.get_by_role("button", name="Open").click()
    expect(visitor.get_by_role("heading", name="my-cli", level=1)).to_be_visible()
    expect(visitor.locator(".summary .stat").first.locator(".stat-value")).to_have_text("3")
    expect(visitor.get_by_role("heading", name="Platforms")).to_be_visible()
    visitor.get_by_role("link", name="Last 7 days").click()
    expect(visitor.get_by_role("link", name="Last 7 days")).to_have_attribute("aria-current", "page")
    shoot(visitor, "shared-page")
    assert violations == []

    admin.get_by_role("button", name="Revoke").click()
    expect(admin.get_by_text("it answers 404 from now on")).to_be_visible()
    visitor.reload()
    expect(visitor.get_by_role("heading", name="Not found")).to_be_visible()
