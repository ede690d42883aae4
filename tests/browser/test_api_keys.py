"""A maintainer creates an API key in the browser and reads the page's numbers with it over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_key_made_in_the_browser_reads_the_numbers_the_page_shows(open_page, live_server, alice, app):
    now = timezone.now()
    store(app, *[sdk_event(now, user=f"u{i % 3}") for i in range(7)], now=now)
    org = app.organization
    page = open_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"/orgs/{org.public_id}/apps/")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("README numbers")
    page.get_by_label("read: organizations, apps and every analytics figure").check()
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#issued-key").inner_text().strip()
    assert key.startswith("clacks_")
    expect(page.get_by_role("cell", name="README numbers", exact=True)).to_be_visible()
    shoot(page, "api-keys")

    page.goto(f"/orgs/{org.public_id}/apps/{app.public_id}/?range=7d")
    shown = [text.strip() for text in page.locator(".stat-value").all_inner_texts()[:2]]

    request = urllib.request.Request(
        f"{live_server.url}/api/v1/orgs/{org.public_id}/apps/{app.public_id}/summary/?range=7d",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        summary = json.load(answer)["summary"]
    assert shown == [str(summary["events"]["current"]), str(summary["users"]["current"])] == ["7", "3"]

    # Revoked in the browser, the key stops working.
    page.goto(f"/orgs/{org.public_id}/settings/api-keys/")
    page.get_by_role("button", name="Revoke README numbers").click()
    expect(page.get_by_text("is revoked")).to_be_visible()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
