"""Funnels through a browser: an admin creates one with the form and reads the
seeded truth on its page, on a laptop and on a phone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import Page, expect

from organizations.models import Role
from tests.browser.conftest import PHONE, path_of, shoot
from tests.dashboard.conftest import sdk_event, store
from tests.factories import PASSWORD, make_app, make_member, make_org, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url("/accounts/login/")


def step_users(page: Page) -> list[str]:
    return [cell.inner_text().strip() for cell in page.locator(".funnel-table td[data-label='Users']").all()]


def test_an_admin_builds_a_funnel_and_a_viewer_reads_it(open_page):
    admin, viewer = make_user("ada"), make_user("grace")
    org = make_org(name="Acme Tools", owner=admin)
    make_member(org, viewer, role=Role.VIEWER)
    app, _ = make_app(org, name="forge-cli")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    began = now - timedelta(hours=5)

    def run(user, minutes, command, **fields):
        return sdk_event(began + timedelta(minutes=minutes), user=user, data={"command": command}, **fields)

    # Three users start with init; two build within the hour, one of them deploys.
    # A build before init and a deploy after the window do not count.
    store(
        app,
        run("x", 0, "init"), run("x", 12, "build"), run("x", 30, "deploy"),
        run("y", -20, "build"), run("y", 0, "init"), run("y", 40, "build"), run("y", 75, "deploy"),
        run("z", 5, "init", os="windows"),
        now=now,
    )  # fmt: skip

    page = open_page()
    sign_in(page, "ada")
    page.goto(f"/orgs/{org.public_id}/apps/{app.public_id}/")
    page.get_by_role("link", name="Funnels").click()
    page.get_by_role("link", name="New funnel").click()
    page.get_by_label("Name").fill("Init to deploy")
    page.get_by_label("Step 1: event type").fill("command_execution")
    page.locator("#id_step_1_name").fill("init")
    page.get_by_label("Step 2: event type").fill("command_execution")
    page.locator("#id_step_2_name").fill("build")
    page.get_by_label("Step 3: event type").fill("command_execution")
    page.locator("#id_step_3_name").fill("deploy")
    page.get_by_label("Conversion window").select_option(label="1 hour")
    shoot(page, "funnel-form")
    page.get_by_role("button", name="Create funnel").click()

    expect(page.get_by_role("heading", name="Init to deploy", level=1)).to_be_visible()
    expect(page.get_by_text("Funnel “Init to deploy” saved.")).to_be_visible()
    assert step_users(page) == ["3", "2", "1"]
    expect(page.locator(".stat", has_text="Conversion").locator(".stat-value")).to_have_text("33.3%")
    shoot(page, "funnel-detail")
    detail = path_of(page)

    # The filter bar: Windows users only (z entered and went no further).
    page.get_by_label("OS").select_option("windows")
    page.get_by_role("button", name="Apply").click()
    assert step_users(page) == ["1", "0", "0"]

    phone = open_page(PHONE)
    sign_in(phone, "grace")
    phone.goto(detail)
    assert step_users(phone) == ["3", "2", "1"]
    expect(phone.get_by_role("link", name="Edit")).to_have_count(0)
    # Nothing spills sideways at a phone's width.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shoot(phone, "funnel-detail-phone")
    phone.goto(f"/orgs/{org.public_id}/apps/{app.public_id}/funnels/")
    expect(phone.get_by_role("link", name="Init to deploy")).to_be_visible()
    shoot(phone, "funnel-list-phone")
