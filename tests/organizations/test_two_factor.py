"""Two-factor sign-in: enrolment with a QR code, the second step, recovery codes, disabling,
an organization requiring it, and the Django admin."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from organizations import twofactor
from organizations.models import AuditEntry, RecoveryCode, RecoveryCodeDevice
from tests.factories import PASSWORD, make_member, make_org, make_user

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str = PASSWORD, next_: str = ""):
    data = {"username": username, "password": password}
    if next_:
        data["next"] = next_
    return client.post("/accounts/login/", data)


def shown_secret(page: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert match, "the page shows no key"
    return match[1].replace(" ", "")


def code_for(secret: str) -> str:
    """The code an authenticator app shows now."""
    return pyotp.TOTP(secret).now()


def next_code(secret: str, user) -> str:
    """A code the server takes now without waiting for the next 30-second step: the first
    step after the last one used (a code works once), within the step of the device's
    clock (django-otp follows the phone's drift) plus or minus one, the tolerance."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    now = int(time.time()) // 30 + device.drift
    step = max(now - 1, device.last_t + 1)
    assert step <= now + 1, "no unused step in the window: the test ran too slowly"
    return pyotp.TOTP(secret).at(step * 30)


def enrol(client: Client) -> tuple[str, list[str]]:
    """Turn two-factor on through the pages; (secret, recovery codes)."""
    client.post("/accounts/two-factor/start/")
    secret = shown_secret(client.get("/accounts/two-factor/").content.decode())
    page = client.post("/accounts/two-factor/confirm/", {"code": code_for(secret)}, follow=True).content.decode()
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", page)
    return secret, codes


def test_enrolment_shows_a_qr_code_and_a_key_and_is_on_only_after_a_right_code(client, alice, org):
    assert sign_in(client, "alice").status_code == 302
    page = client.get("/accounts/two-factor/").content.decode()
    assert "Set up two-factor sign-in" in page and not TOTPDevice.objects.exists()

    client.post("/accounts/two-factor/start/")
    page = client.get("/accounts/two-factor/").content.decode()
    secret = shown_secret(page)
    assert 'src="/accounts/two-factor/qr.svg"' in page
    qr = client.get("/accounts/two-factor/qr.svg")
    assert qr["Content-Type"] == "image/svg+xml" and b"<svg" in qr.content and b"<path" in qr.content
    assert b"http" not in qr.content.replace(b"http://www.w3.org/2000/svg", b"")  # drawn here, links nowhere

    wrong = client.post("/accounts/two-factor/confirm/", {"code": "000000"}, follow=True).content.decode()
    assert "That code is not right" in wrong
    assert not twofactor.is_enabled(alice)

    TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)  # a second later
    done = client.post("/accounts/two-factor/confirm/", {"code": code_for(secret)}, follow=True).content.decode()
    assert "Two-factor sign-in is on." in done
    assert twofactor.is_enabled(alice)
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", done)
    assert len(set(codes)) == 10
    # Stored as hashes only, and shown once.
    stored = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert len(stored) == 10 and not any(code in stored or code.replace("-", "") in stored for code in codes)
    again = client.get("/accounts/two-factor/").content.decode()
    assert codes[0] not in again and "You have 10 recovery codes left." in again
    assert AuditEntry.objects.filter(organization=org, action="two_factor.enable", target="alice").exists()
    # The enrolling session is verified: pages open without a second step.
    assert client.get("/orgs/").status_code == 200


def test_sign_in_asks_for_the_code_before_any_page_the_admin_included(alice, org):
    browser = Client()
    sign_in(browser, "alice")
    secret, _ = enrol(browser)

    client = Client()
    response = sign_in(client, "alice", next_="/orgs/")
    assert response.status_code == 302
    step = client.get("/orgs/")
    assert step.status_code == 302 and step.url == "/accounts/two-factor/verify/?next=%2Forgs%2F"
    assert client.get(f"/orgs/{org.public_id}/members/").url.startswith("/accounts/two-factor/verify/")
    assert client.get("/admin/").url.startswith("/accounts/two-factor/verify/")
    assert client.get("/accounts/sessions/").url.startswith("/accounts/two-factor/verify/")

    page = client.get(step.url)
    assert b"Enter your two-factor code" in page.content
    wrong = client.post("/accounts/two-factor/verify/", {"code": "123456", "next": "/orgs/"})
    assert wrong.status_code == 200 and b"That code is not right" in wrong.content

    # Each failure makes the device wait before the next try (django-otp's throttling).
    TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    right = client.post("/accounts/two-factor/verify/", {"code": next_code(secret, alice), "next": "/orgs/"})
    assert right.status_code == 302 and right.url == "/orgs/"
    assert client.get("/orgs/").status_code == 200


def test_the_verify_step_never_redirects_off_site(alice, org):
    browser = Client()
    sign_in(browser, "alice")
    secret, _ = enrol(browser)
    client = Client()
    sign_in(client, "alice")
    response = client.post(
        "/accounts/two-factor/verify/", {"code": next_code(secret, alice), "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response.url == "/"


def test_a_recovery_code_signs_in_once(alice, org):
    browser = Client()
    sign_in(browser, "alice")
    _, codes = enrol(browser)

    client = Client()
    sign_in(client, "alice")
    used = client.post("/accounts/two-factor/verify/", {"code": codes[3].upper(), "next": "/orgs/"}, follow=True)
    assert used.redirect_chain[-1][0] == "/orgs/"
    assert "You used a recovery code; 9 left." in used.content.decode()
    assert RecoveryCode.objects.count() == 9
    assert AuditEntry.objects.filter(organization=org, action="two_factor.recovery_code_used").exists()

    again = Client()
    sign_in(again, "alice")
    refused = again.post("/accounts/two-factor/verify/", {"code": codes[3]})
    assert refused.status_code == 200 and b"That code is not right" in refused.content
    assert again.get("/orgs/").url.startswith("/accounts/two-factor/verify/")


def test_new_recovery_codes_replace_the_old_ones(client, alice, org):
    sign_in(client, "alice")
    secret, old = enrol(client)
    page = client.post(
        "/accounts/two-factor/recovery-codes/", {"regen-code": next_code(secret, alice)}, follow=True
    ).content.decode()
    new = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", page)
    assert len(set(new)) == 10 and not set(new) & set(old)
    assert twofactor.verify(alice, old[0]) is None
    RecoveryCodeDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)  # a second later
    assert twofactor.verify(alice, new[0]) is not None
    assert AuditEntry.objects.filter(action="two_factor.recovery_codes_regenerated").exists()


def test_disabling_needs_a_code_or_a_recovery_code(client, alice, org):
    sign_in(client, "alice")
    _, codes = enrol(client)
    refused = client.post("/accounts/two-factor/disable/", {"disable-code": "abcde-fghjk"}, follow=True)
    assert "two-factor sign-in is still on" in refused.content.decode()
    assert twofactor.is_enabled(alice)

    RecoveryCodeDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)  # a second later

    done = client.post("/accounts/two-factor/disable/", {"disable-code": codes[0]}, follow=True)
    assert "Two-factor sign-in is off." in done.content.decode()
    assert not twofactor.is_enabled(alice) and not RecoveryCode.objects.exists()
    assert AuditEntry.objects.filter(organization=org, action="two_factor.disable", target="alice").exists()
    # Signing in needs only the password again.
    other = Client()
    sign_in(other, "alice")
    assert other.get("/orgs/").status_code == 200


def test_disabling_with_the_authenticator_code(client, alice, org):
    sign_in(client, "alice")
    secret, _ = enrol(client)
    client.post("/accounts/two-factor/disable/", {"disable-code": next_code(secret, alice)})
    assert not twofactor.is_enabled(alice)


def test_turning_two_factor_on_signs_out_the_other_sessions(alice, org):
    laptop, phone = Client(), Client()
    sign_in(laptop, "alice")
    sign_in(phone, "alice")
    assert phone.get("/orgs/").status_code == 200
    enrol(laptop)
    assert phone.get("/orgs/").url.startswith("/accounts/login/")
    assert laptop.get("/orgs/").status_code == 200


def test_an_owner_requires_two_factor_and_members_enrol_at_their_next_sign_in(client, alice, bob, org):
    client.force_login(alice)
    response = client.post(f"/orgs/{org.public_id}/members/two-factor/", {"require_two_factor": "on"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.require_two_factor
    assert AuditEntry.objects.filter(organization=org, action="organization.require_two_factor", actor=alice).exists()

    member = Client()
    sign_in(member, "bob")
    for path in ("/", "/orgs/", f"/orgs/{org.public_id}/apps/", "/accounts/sessions/"):
        led = member.get(path, follow=True)
        assert led.redirect_chain[-1][0] == "/accounts/two-factor/", path
    assert "Your organization requires two-factor sign-in" in led.content.decode()
    secret, _ = enrol(member)
    assert twofactor.is_enabled(bob)
    assert member.get(f"/orgs/{org.public_id}/apps/").status_code == 200

    # Members of other organizations are not concerned.
    carol = make_user("carol")
    make_member(make_org(name="Other"), carol)
    other = Client()
    sign_in(other, "carol")
    assert other.get("/orgs/").status_code == 200


def test_the_members_page_shows_who_has_two_factor(client, alice, bob, org):
    sign_in(client, "alice")
    enrol(client)
    page = client.get(f"/orgs/{org.public_id}/members/").content.decode()
    alice_row = page[page.index("alice") : page.index("bob")]
    assert "two-factor" in alice_row
    assert "badge ok\">two-factor" not in page[page.index("bob") :]


def test_a_superuser_with_two_factor_gives_the_code_before_the_admin(alice, org):
    root = make_user("root", is_superuser=True, is_staff=True)
    browser = Client()
    sign_in(browser, "root")
    secret, _ = enrol(browser)
    assert browser.get("/admin/").status_code == 200

    client = Client()
    sign_in(client, "root")
    assert client.get("/admin/").url == "/accounts/two-factor/verify/?next=%2Fadmin%2F"
    # The admin's own sign-in page leads to the same step.
    admin_client = Client()
    admin_client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert admin_client.get("/admin/").url.startswith("/accounts/two-factor/verify/")
    client.post("/accounts/two-factor/verify/", {"code": next_code(secret, root)})
    assert b"Site administration" in client.get("/admin/").content
    assert root.is_superuser
