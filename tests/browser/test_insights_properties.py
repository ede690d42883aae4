"""The Properties page in a browser, on a laptop and a phone: a seeded figure is
shown, the key and split links work, and nothing is wider than the screen."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LAPTOP, PHONE, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COMMANDS = ("build", "test", "deploy-to-a-rather-long-environment-name")


@pytest.fixture
def seeded(app):
    """60 command runs over the last three days with known durations: their sum is the seeded truth."""
    now = datetime.now(timezone.utc)
    durations = [Decimal(f"{n * 37}.{n % 7}1") for n in range(1, 61)]
    events = [
        sdk_event(now - timedelta(hours=n), os=("linux", "macos")[n % 2],
                  data={"command": COMMANDS[n % 3], "duration_ms": float(duration), "success": n % 7 != 0,
                        "context": {"jobs": n % 4, "target": "x86_64-unknown-linux-gnu" if n % 2 else "aarch64-apple-darwin"}})
        for n, duration in enumerate(durations, start=1)
    ]  # fmt: skip
    store(app, *events, now=now)
    linux = sum((d for n, d in enumerate(durations, start=1) if n % 2 == 0), Decimal(0))
    return {"sum": sum(durations, Decimal(0)), "linux_sum": linux}


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)


def shown(number: Decimal) -> str:
    """A sum as the page writes it: every digit, no trailing zeros."""
    return f"{number.normalize():,f}"


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_properties_page_shows_the_seeded_sum_and_fits_the_screen(open_page, alice, bob, org, app, seeded, viewport):
    page = open_page(viewport=viewport)
    sign_in(page, "bob")  # a viewer
    base = f"/orgs/{org.public_id}/apps/{app.public_id}/properties/"
    name = "laptop" if viewport is LAPTOP else "phone"

    page.goto(base)
    expect(page.get_by_role("heading", name="Properties", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Properties", exact=True)).to_have_attribute("aria-current", "page")
    keys = page.locator("table.key-table")
    expect(keys).to_contain_text("context › jobs")
    shoot(page, f"{name}-properties")

    keys.get_by_role("link", name="duration_ms").click()
    expect(page.locator("#number-sum")).to_have_text(shown(seeded["sum"]))  # exactly: 67,728.4, no float rounding
    expect(page.locator("#number-events")).to_have_text("60")
    expect(page.locator("#number-percentiles")).to_contain_text("≈")
    shoot(page, f"{name}-properties-number")

    page.locator(".split-links").get_by_role("link", name="command").click()
    split = page.locator("table.split-table")
    expect(split).to_contain_text("deploy-to-a-rather-long-environment-name")
    assert split.locator("tbody tr").count() == 3
    shoot(page, f"{name}-properties-split")

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width} px wide on a {viewport['width']} px screen"

    page.goto(base + "?range=7d&os=linux&key=duration_ms")
    expect(page.locator("#number-sum")).to_have_text(shown(seeded["linux_sum"]))
    page.goto(base + "?key=context%1Ftarget")
    expect(page.locator("table.value-table")).to_contain_text("aarch64-apple-darwin")
    shoot(page, f"{name}-properties-values")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the values are {width} px wide on a {viewport['width']} px screen"
