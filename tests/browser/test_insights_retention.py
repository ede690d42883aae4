"""The Retention page in a browser, on a laptop and on a phone, against seeded figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import LAPTOP, PHONE, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seeded(app):
    """Ten users first seen a week ago, four of them back the next day, two of them today."""
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    cohort_day = midnight - timedelta(days=7) + timedelta(hours=10)
    earlier_today = now - min(timedelta(minutes=5), (now - midnight) / 2)

    def event(when, i):  # odd users on Linux, even ones on macOS
        return sdk_event(when, user=f"u{i}", os="linux" if i % 2 else "macos")

    events = [event(cohort_day, i) for i in range(10)]
    events += [event(cohort_day + timedelta(days=1), i) for i in range(4)]
    events += [event(earlier_today, i) for i in range(2)]
    store(app, *events, now=now)
    return cohort_day.date()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_retention_page_shows_the_seeded_cohort(open_page, live_server, bob, app, seeded, viewport):
    page = open_page(viewport=viewport)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(f"{live_server.url}/accounts/login/")

    page.goto(f"/orgs/{app.organization.public_id}/apps/{app.public_id}/?range=30d")
    page.locator("nav.subnav-app").get_by_role("link", name="Retention").click()
    expect(page.get_by_role("heading", name="Retention", level=1)).to_be_visible()
    # The app's navigation keeps the range (and filters) of the page it leaves.
    expect(page).to_have_url(f"{live_server.url}/orgs/{app.organization.public_id}/apps/{app.public_id}/retention/?range=30d")
    page.get_by_role("link", name="Last 30 days").click()

    expect(page.locator("#stat-dau .stat-value")).to_have_text("2")
    expect(page.locator("#stat-mau .stat-value")).to_have_text("10")
    row = page.locator("#daily-cohorts tbody tr", has_text=f"{seeded.day} {seeded:%b %Y}")
    expect(row.locator("td").nth(0)).to_have_text("10")
    expect(row.locator("td").nth(1)).to_have_text("40%")  # four of ten came back the next day
    expect(row.locator("td").nth(7)).to_have_text("20%*")  # two today, which is not over
    expect(row.locator("td.future")).to_have_count(7)  # days 8 to 14 have not begun
    shoot(page, f"retention-{'phone' if viewport is PHONE else 'laptop'}")

    # Filtered to macOS: the five even users, two of whom came back the next day and one today.
    page.get_by_label("OS").select_option("macos")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".filter-chips")).to_contain_text("OS: macos")
    expect(row.locator("td").nth(0)).to_have_text("5")
    expect(row.locator("td").nth(1)).to_have_text("40%")
    expect(row.locator("td").nth(7)).to_have_text("20%*")

    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width} px wide on a {viewport['width']} px screen"
    shoot(page, f"retention-macos-{'phone' if viewport is PHONE else 'laptop'}")
