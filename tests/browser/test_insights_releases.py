"""The Releases page in a browser, on a laptop and a phone: it draws, reads,
and shows the figures a count over the seeded events gives."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.conftest import LAPTOP, PHONE, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VERSIONS = ["1.0.0", "1.1.0", "1.2.0-rc.1", "1.2.0", "nightly"]


def seed(app) -> dict:
    """Three weeks of events, users moving to newer versions; returns the truth the page must show."""
    now = timezone.now()
    rng = random.Random(11)
    events, seen = [], []
    for n in range(40):
        user = f"user{n}"
        upgrade_at = rng.randint(0, 20)  # days back when this user moved to 1.2.0
        for days_back in rng.sample(range(21), 6):
            moment = now - timedelta(days=days_back, minutes=rng.randint(0, 600))
            version = "1.2.0" if days_back <= upgrade_at else rng.choice(VERSIONS[:3] + ["nightly"])
            if n % 9 == 0:
                version = "1.0.0"  # a few never upgrade
            events.append(sdk_event(moment, user=user, version=version, os=rng.choice(["linux", "macos", "windows"])))
            seen.append((moment, f"client_{user}", version))
    store(app, *events, now=now)
    today = now.date()
    week = {user for moment, user, _ in seen if (today - moment.date()).days < 7}
    on_newest = {user for moment, user, version in seen if (today - moment.date()).days < 7 and version == "1.2.0"}
    return {"week_users": len(week), "newest_users": len(on_newest)}


def log_in(page: Page, username: str) -> None:
    page.goto(reverse("organizations:login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def versions_row(page: Page, version: str) -> dict[str, str]:
    """The cells of one row of the versions table, by column heading."""
    table = page.locator("table.versions-table")
    headings = [cell.text_content().strip() for cell in table.locator("thead th").all()]
    row = table.locator("tbody tr").filter(has=page.locator("th code", has_text=re.compile(f"^{re.escape(version)}$")))
    cells = [row.locator("th").inner_text().strip()] + [cell.inner_text().strip() for cell in row.locator("td").all()]
    return dict(zip(headings, cells))


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_releases_page_shows_the_seeded_truth(open_page, app, bob, viewport):
    truth = seed(app)
    page = open_page(viewport)
    log_in(page, bob.username)
    url = reverse("dashboard:releases", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})
    page.goto(f"{url}?range=30d")

    expect(page.get_by_role("heading", name="Releases", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Releases")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("img", name="Active users per version per day (UTC)")).to_be_visible()
    row = versions_row(page, "1.2.0")
    assert row["Users, 7 days"] == str(truth["newest_users"])
    expect(page.get_by_role("heading", name="Rollout of 1.2.0")).to_be_visible()
    expect(page.locator("[data-figure=old-users]")).to_contain_text(f"of {truth['week_users']} users")

    # Nothing wider than the screen: tables scroll inside their own box.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    shoot(page, f"insights-releases-{'phone' if viewport is PHONE else 'laptop'}")

    # N from the small form; a bad one is a message, not an error page.
    page.get_by_label("More than how many releases behind").fill("-3")
    page.get_by_role("button", name="Count").click()
    expect(page.get_by_role("alert")).to_contain_text("greater than or equal to 0")
    page.get_by_label("More than how many releases behind").fill("0")
    page.get_by_role("button", name="Count").click()
    expect(page.locator("[data-figure=old-users]")).to_contain_text("more than 0 releases behind")
    assert "range=30d" in page.url  # the form keeps the range
