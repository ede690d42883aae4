"""The platforms page and the filter bar in a browser, on a laptop and a phone:
a seeded figure, OS versions folding open, and clicked rows filtering the pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LAPTOP, PHONE, path_of, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seeded(app):
    """Seven linux/x86_64 command runs from three users (two on 22.04), one failed; three macos/aarch64
    runs from two users, in CI on 1.3.0, none reporting an outcome."""
    now = datetime.now(timezone.utc)
    events = []
    for i, user in enumerate(["a", "a", "b", "b", "c", "c", "c"]):
        event = sdk_event(now - timedelta(minutes=5 + i), user=user, data={"command": "build", "success": i != 0, "duration_ms": 90})
        event["environment"]["os_version"] = "22.04" if user != "c" else "24.04"
        events.append(event)
    for i, user in enumerate(["m", "m", "n"]):
        event = sdk_event(now - timedelta(minutes=20 + i), user=user, os="macos", arch="aarch64", ci=True, version="1.3.0")
        event["environment"]["os_version"] = "14.2"
        events.append(event)
    store(app, *events, now=now)
    return now


def sign_in(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # Signed in: the header has its menu (Sign out is inside, folded away).
    expect(page.locator("#site-menu")).to_have_count(1)


def platform_row(page: Page, name: str):
    return page.locator(".platforms-table tbody.platform tr", has_text=name)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_platforms_page_shows_the_seeded_figures_and_filters_by_a_clicked_row(open_page, app, seeded, viewport):
    page = open_page(viewport=viewport)
    sign_in(page)
    size = "phone" if viewport is PHONE else "laptop"
    base = f"/orgs/{app.organization.public_id}/apps/{app.public_id}/"

    page.goto(base)
    page.get_by_role("link", name="Platforms", exact=True).click()
    expect(page.get_by_role("heading", name="Platforms", level=1)).to_be_visible()
    linux = platform_row(page, "linux")
    # users, events, command runs, failure rate: one of the seven runs failed.
    expect(linux.locator("td")).to_have_text(["3", "7", "7", "14.3%"])
    expect(platform_row(page, "macos").locator("td")).to_have_text(["2", "3", "3", "—"])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{path_of(page)} is {width} px wide on a {viewport['width']} px screen"

    # OS versions fold under each platform.
    versions = page.locator(".platforms-table tbody.os-versions").first
    expect(versions).to_be_hidden()
    page.get_by_role("button", name="OS versions of linux x86_64").click()
    expect(versions).to_be_visible()
    expect(versions.locator("tr", has_text="22.04").locator("td").first).to_have_text("2")
    shoot(page, f"insights-platforms-{size}")

    # Clicking a platform filters the page (and the URL says so).
    page.get_by_role("link", name="macos aarch64").click()
    assert "os=macos" in path_of(page) and "arch=aarch64" in path_of(page)
    expect(page.locator(".platforms-table tbody.platform tr")).to_have_count(1)
    expect(page.locator(".filter-chips")).to_contain_text("OS: macos")
    expect(page.locator(".platforms-table tr.total td")).to_have_text(["2", "3", "3", "—"])
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{path_of(page)} is {width} px wide on a {viewport['width']} px screen"
    shoot(page, f"insights-platforms-filtered-{size}")

    # A chip removes its filter.
    page.get_by_role("link", name="OS: macos").click()
    assert "os=" not in path_of(page) and "arch=aarch64" in path_of(page)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_clicking_a_breakdown_row_filters_the_overview(open_page, app, seeded, viewport):
    page = open_page(viewport=viewport)
    sign_in(page)
    size = "phone" if viewport is PHONE else "laptop"
    page.goto(f"/orgs/{app.organization.public_id}/apps/{app.public_id}/?range=24h")
    stat = page.locator(".summary .stat", has=page.get_by_role("heading", name="Events", exact=True)).locator(".stat-value")
    expect(stat).to_have_text("10")

    card = page.locator("table.bar-table", has=page.get_by_role("heading", name="Service version", exact=True))
    card.get_by_role("link", name="1.3.0").click()
    assert "version=1.3.0" in path_of(page) and "range=24h" in path_of(page)
    expect(stat).to_have_text("3")
    users = page.locator(".summary .stat", has=page.get_by_role("heading", name="Users", exact=True)).locator(".stat-value")
    expect(users).to_have_text("2")
    expect(page.get_by_label("Version")).to_have_value("1.3.0")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{path_of(page)} is {width} px wide on a {viewport['width']} px screen"
    shoot(page, f"insights-overview-filtered-{size}")

    # The bar's own form: pick an OS, apply, and the URL holds only what is set.
    page.get_by_label("OS", exact=True).select_option("linux")
    page.get_by_role("button", name="Apply").click()
    assert path_of(page).endswith("?version=1.3.0&os=linux&range=24h"), path_of(page)
    expect(page.get_by_role("heading", name="No matching events in this range")).to_be_visible()
