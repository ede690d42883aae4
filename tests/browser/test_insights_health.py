"""Release health, a command's page and the overview's regressions panel, in a browser on a laptop and a phone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LAPTOP, PHONE, path_of, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def runs(when: datetime, command: str, version: str, *, n: int, failed: int, duration: int) -> list[dict]:
    return [
        sdk_event(
            when - timedelta(minutes=i), user=f"u{i % 7}", version=version, os=("linux", "macos", "windows")[i % 3],
            data={"command": command, "success": i >= failed, "duration_ms": duration + i, "exit_code": 1 if i < failed else 0,
                  "flags": ["--verbose"] if i % 2 else []},
        )  # fmt: skip
        for i in range(n)
    ]


@pytest.fixture
def seeded(app):
    """deploy fails 3 % of the time in 1.2.0 and 25 % in 1.3.0 (a regression); build is steady."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    when = now - timedelta(days=1)
    store(
        app,
        *runs(when, "deploy", "1.2.0", n=100, failed=3, duration=2000),
        *runs(when, "deploy", "1.3.0", n=120, failed=30, duration=2000),
        *runs(when, "build", "1.2.0", n=80, failed=2, duration=400),
        *runs(when, "build", "1.3.0", n=90, failed=2, duration=400),
        *runs(when, "git/commit", "1.3.0", n=5, failed=0, duration=50),
        now=now,
    )
    return app


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(f"{base_url}/accounts/login/")


def fits(page: Page, viewport: dict) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{path_of(page)} is {width} px wide on a {viewport['width']} px screen"


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_release_health_shows_the_seeded_regression(open_page, live_server, seeded, org, bob, viewport):
    page = open_page(viewport=viewport)
    sign_in(page, live_server.url, "bob")
    name = "laptop" if viewport is LAPTOP else "phone"

    page.goto(f"/orgs/{org.public_id}/apps/{seeded.public_id}/")
    panel = page.locator(".regressions-panel")
    expect(panel.get_by_role("heading")).to_have_text("Regressions in 1.3.0")
    expect(panel.get_by_role("link", name="deploy")).to_be_visible()
    fits(page, viewport)
    shoot(page, f"health-{name}-overview")

    page.get_by_role("navigation", name=seeded.name).get_by_role("link", name="Release health").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Release health")
    newest = page.locator("section.version-health").first
    expect(newest.get_by_role("heading", level=2)).to_contain_text("1.3.0")
    expect(newest.get_by_role("heading", level=2)).to_contain_text("1 regression")
    deploy = newest.locator("tbody tr", has=page.get_by_role("link", name="deploy", exact=True))
    expect(deploy.locator('td[data-label="Runs"]')).to_have_text("120")
    expect(deploy.locator('td[data-label="Failure rate"]')).to_contain_text("25%")
    expect(deploy.locator('td[data-label="Failure rate"]')).to_contain_text("30 of 120")
    expect(deploy.locator('td[data-label="Against previous"]')).to_contain_text("Fails more")
    build = newest.locator("tbody tr", has=page.get_by_role("link", name="build", exact=True))
    expect(build.locator('td[data-label="Against previous"]')).to_contain_text("No regression")
    expect(deploy.locator('td[data-label="Exit codes"]')).to_contain_text("0 ×90")
    fits(page, viewport)
    shoot(page, f"health-{name}-release-health")

    newest.get_by_role("link", name="git/commit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Command git/commit")
    expect(page.locator("#command-runs")).to_have_text("5")
    page.go_back()

    deploy.get_by_role("link", name="deploy", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Command deploy")
    expect(page.locator("#command-runs")).to_have_text("220")
    expect(page.locator("#command-failure-rate")).to_have_text("15%")  # 33 of 220
    fits(page, viewport)
    shoot(page, f"health-{name}-command")

    page.locator("section", has=page.get_by_role("heading", name="By version")).get_by_role("link", name="1.3.0").click()
    expect(page.locator("#command-runs")).to_have_text("120")
    expect(page.locator(".filter-chips")).to_contain_text("Version: 1.3.0")
    flags = page.locator("section", has=page.get_by_role("heading", name="Flags used"))
    expect(flags.locator("tbody tr").first).to_contain_text("--verbose")
    expect(flags.locator("tbody tr").first.locator("td").first).to_have_text("60")
    fits(page, viewport)
    shoot(page, f"health-{name}-command-filtered")
