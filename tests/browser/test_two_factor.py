"""Two-factor sign-in through a browser (issue 12, items 1 and 8): enrol by computing the code
from the key the page shows, as an authenticator app does; sign in with a code; sign in
with a recovery code; and see the session on the session list."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from organizations.models import AuditEntry, RecoveryCode
from tests.browser.conftest import open_account_menu, path_of, shoot
from tests.factories import PASSWORD
from tests.organizations.test_two_factor import next_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(page: Page, username: str = "alice", password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    open_account_menu(page)
    page.get_by_role("button", name="Sign out").first.click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_enrol_sign_in_with_a_code_then_with_a_recovery_code(open_page, alice, org):
    page = open_page()
    sign_in(page)
    expect(page.get_by_role("heading", name="Alice Org")).to_be_visible()

    # Enrol: the QR code is drawn by the server, the key is shown to type in.
    open_account_menu(page)
    page.get_by_role("link", name="Two-factor").click()
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    # Loaded and drawn (naturalWidth stays 0 for an image that failed).
    page.wait_for_function("() => { const img = document.querySelector('img.qr'); return img.complete && img.naturalWidth > 0; }")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    shoot(page, "two-factor-enrol")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_text("Two-factor sign-in is on.")).to_be_visible()
    codes = re.findall(r"[a-z2-9]{5}-[a-z2-9]{5}", page.locator("#recovery-code-list").inner_text())
    assert len(codes) == 10
    shoot(page, "two-factor-recovery-codes")

    # Sign in again: the password, then a code from the app (one the server takes
    # without waiting 30 seconds: it refuses the code already used to enrol).
    sign_out(page)
    sign_in(page)
    expect(page.get_by_role("heading", name="Enter your two-factor code")).to_be_visible()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    time.sleep(1.1)  # each failure makes the next try wait (one second after the first)
    page.get_by_label("Code").fill(next_code(secret, alice))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Alice Org")).to_be_visible()

    # And with a recovery code instead, which then works no more.
    sign_out(page)
    sign_in(page)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("You used a recovery code; 9 left.")).to_be_visible()
    expect(page.get_by_role("heading", name="Alice Org")).to_be_visible()
    assert RecoveryCode.objects.count() == 9
    assert AuditEntry.objects.filter(organization=org, action="two_factor.recovery_code_used").exists()

    sign_out(page)
    sign_in(page)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("That code is not right")).to_be_visible()
    assert path_of(page).startswith("/accounts/two-factor/verify/")


def test_a_member_is_led_to_enrol_when_the_organization_requires_it(open_page, alice, bob, org):
    owner = open_page()
    sign_in(owner)
    owner.goto(f"/orgs/{org.public_id}/members/")
    owner.get_by_label("Require two-factor sign-in").check()
    owner.get_by_role("button", name="Save").click()
    expect(owner.get_by_text("Two-factor sign-in is required")).to_be_visible()
    expect(owner.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()  # the owner too

    member = open_page()
    sign_in(member, "bob")
    expect(member.get_by_text("Your organization requires two-factor sign-in")).to_be_visible()
    member.get_by_role("button", name="Set up two-factor sign-in").click()
    secret = member.locator("#totp-secret").inner_text().replace(" ", "")
    member.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    member.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(member.get_by_text("Two-factor sign-in is on.")).to_be_visible()
    member.goto(f"/orgs/{org.public_id}/apps/")
    expect(member.get_by_role("heading", name="Apps")).to_be_visible()


def test_the_session_list_and_signing_out_everywhere_else(open_page, alice, org):
    laptop, phone = open_page(), open_page()
    sign_in(laptop)
    sign_in(phone)
    open_account_menu(laptop)
    laptop.get_by_role("link", name="Sessions").click()
    expect(laptop.get_by_role("heading", name="Your sessions")).to_be_visible()
    expect(laptop.locator("tbody tr")).to_have_count(2)
    expect(laptop.get_by_text("this browser")).to_be_visible()
    shoot(laptop, "sessions")
    laptop.get_by_role("button", name="Sign out everywhere else").click()
    expect(laptop.get_by_text("Signed out of 1 other session.")).to_be_visible()
    expect(laptop.locator("tbody tr")).to_have_count(1)
    phone.reload()
    expect(phone.get_by_role("heading", name="Sign in")).to_be_visible()
