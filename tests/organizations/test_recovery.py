"""Getting back in without a shell: owner-made reset links, the "forgot password" email,
and an owner unlocking a member who is locked out."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client, override_settings

from organizations.models import AuditEntry, Role, UserSession
from organizations.passwords import reset_path
from tests.alerts.conftest import smtp_server  # noqa: F401  (the local SMTP server fixture)
from tests.factories import PASSWORD, make_member, make_org, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-pass-42"


def sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


def make_link(client: Client, org, member) -> str:
    membership = member.memberships.get(organization=org)
    page = client.post(f"/orgs/{org.public_id}/members/{membership.pk}/reset-link/", follow=True).content.decode()
    match = re.search(r'id="reset-link-url"[^>]*>([^<]+)<', page)
    assert match, "no reset link on the page"
    return match[1]


def set_password(url: str, password: str = NEW_PASSWORD):
    """Open a reset link anonymously and choose a password; the final response."""
    client = Client()
    form = client.get(url, follow=True)
    return client.post(form.redirect_chain[-1][0] if form.redirect_chain else url,
                       {"new_password1": password, "new_password2": password}, follow=True)  # fmt: skip


def test_an_owner_makes_a_one_time_reset_link_for_a_member(client, alice, bob, org):
    bobs_phone = Client()
    sign_in(bobs_phone, "bob")
    client.force_login(alice)
    url = make_link(client, org, bob)
    assert url.startswith("http://testserver/accounts/password/reset/")
    entry = AuditEntry.objects.get(organization=org, action="member.password_reset_link")
    assert (entry.actor, entry.target) == (alice, "bob")
    assert "expires_at" in entry.details
    # Shown once.
    assert url not in client.get(f"/orgs/{org.public_id}/members/").content.decode()

    done = set_password(url)
    assert done.redirect_chain[-1][0] == "/accounts/password/reset/done/"
    assert "Your password is set" in done.content.decode()
    bob.refresh_from_db()
    assert bob.check_password(NEW_PASSWORD)
    # Every session of bob ends, and the change is audited.
    assert bobs_phone.get("/orgs/").url.startswith("/accounts/login/")
    assert not UserSession.objects.filter(user=bob).exists()
    assert AuditEntry.objects.filter(organization=org, action="password.reset", target="bob").exists()

    # The link works once.
    again = Client().get(url, follow=True)
    assert "This link no longer works" in again.content.decode()
    assert sign_in(Client(), "bob", NEW_PASSWORD).status_code == 302


def test_a_reset_link_expires(client, alice, bob, org, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    # A token made two hours ago, as the generator would have made it then.
    generator = default_token_generator
    two_hours_ago = generator._num_seconds(generator._now() - timedelta(hours=2))
    token = generator._make_token_with_timestamp(bob, two_hours_ago, generator.secret)
    path = reset_path(bob).rsplit("/", 2)[0] + f"/{token}/"
    page = Client().get(path, follow=True).content.decode()
    assert "This link no longer works" in page
    # Made the same way a minute ago, it still works.
    fresh = generator._make_token_with_timestamp(bob, generator._num_seconds(generator._now()) - 60, generator.secret)
    page = Client().get(path.replace(token, fresh), follow=True).content.decode()
    assert "Choose a new password" in page


def test_admins_and_viewers_cannot_make_reset_links(client, alice, bob, charlie, org):
    make_member(org, charlie, role=Role.ADMIN)
    client.force_login(charlie)
    membership = bob.memberships.get(organization=org)
    assert client.post(f"/orgs/{org.public_id}/members/{membership.pk}/reset-link/").status_code == 403
    assert not AuditEntry.objects.filter(action="member.password_reset_link").exists()


def test_an_owner_cannot_reset_a_member_who_belongs_to_an_organization_they_do_not_own(client, alice, bob, org):
    make_org(name="Bob's own", owner=bob)
    client.force_login(alice)
    membership = bob.memberships.get(organization=org)
    page = client.post(f"/orgs/{org.public_id}/members/{membership.pk}/reset-link/", follow=True).content.decode()
    assert "also belongs to an organization you do not own" in page
    assert 'id="reset-link-url"' not in page
    # A superuser may.
    root = make_user("root", is_superuser=True, is_staff=True)
    make_member(org, root, role=Role.VIEWER)
    client.force_login(root)
    url = make_link(client, org, bob)
    assert "This link no longer works" not in Client().get(url, follow=True).content.decode()


def test_a_superuser_makes_a_reset_link_in_the_django_admin(client, alice, bob, org):
    root = make_user("root", is_superuser=True, is_staff=True)
    client.force_login(root)
    response = client.post(
        "/admin/auth/user/", {"action": "password_reset_link", "_selected_action": [bob.pk]}, follow=True
    )
    page = response.content.decode()
    match = re.search(r"send it yourself\): (http://testserver/accounts/password/reset/[\w-]+/[\w-]+/)", page)
    assert match, page
    entry = AuditEntry.objects.get(organization=org, action="member.password_reset_link")
    assert (entry.actor, entry.target) == (root, "bob")
    assert "Your password is set" in set_password(match[1]).content.decode()


def test_an_owner_cannot_reset_a_superuser(client, alice, org):
    root = make_user("root", is_superuser=True, is_staff=True)
    make_member(org, root, role=Role.VIEWER)
    client.force_login(alice)
    membership = root.memberships.get(organization=org)
    page = client.post(f"/orgs/{org.public_id}/members/{membership.pk}/reset-link/", follow=True).content.decode()
    assert "only a superuser can reset their password" in page


def test_two_factor_still_applies_after_a_reset(alice, bob, org):
    from tests.organizations.test_two_factor import enrol

    bobs = Client()
    sign_in(bobs, "bob")
    enrol(bobs)
    owner = Client()
    owner.force_login(alice)
    set_password(make_link(owner, org, bob))
    client = Client()
    sign_in(client, "bob", NEW_PASSWORD)
    assert client.get("/orgs/").url.startswith("/accounts/two-factor/verify/")


# --- "Forgot your password?" by email ------------------------------------------------------------


def test_without_smtp_there_is_no_forgot_password_email(client, alice):
    assert b"Forgot your password?</a>" not in client.get("/accounts/login/").content
    assert client.get("/accounts/password/forgot/").status_code == 404


def test_the_forgot_password_email_arrives_and_its_link_works(client, alice, org, smtp_server, settings):  # noqa: F811
    settings.CLACKS_PUBLIC_URL = "https://clacks.example.com"
    assert b'href="/accounts/password/forgot/"' in client.get("/accounts/login/").content
    response = client.post("/accounts/password/forgot/", {"email": "ALICE@example.com"}, follow=True)
    assert "Check your email" in response.content.decode()
    deadline = time.monotonic() + 5
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    (message,) = smtp_server.parsed()
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Choose a new Clacks password"
    body = message.get_content()
    link = re.search(r"https://clacks\.example\.com(/accounts/password/reset/\S+/)", body)
    assert link, body
    done = set_password(link[1])
    assert "Your password is set" in done.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_an_unknown_address_gets_the_same_answer_and_no_email(client, alice, smtp_server):  # noqa: F811
    response = client.post("/accounts/password/forgot/", {"email": "nobody@example.com"}, follow=True)
    assert "Check your email" in response.content.decode()
    time.sleep(0.2)
    assert smtp_server.messages == []


# --- Unlocking a member ---------------------------------------------------------------------------


@override_settings(CLACKS_LOGIN_MAX_FAILURES=3)
def test_an_owner_sees_a_locked_out_member_and_unlocks_them(client, alice, bob, org):
    attacker = Client(REMOTE_ADDR="10.0.0.66")
    for _ in range(3):
        sign_in(attacker, "bob", "wrong")
    bobs = Client(REMOTE_ADDR="10.0.0.66")
    assert sign_in(bobs, "bob").status_code == 429

    viewer = Client()
    viewer.force_login(bob)
    assert b"Unlock" not in viewer.get(f"/orgs/{org.public_id}/members/").content

    client.force_login(alice)
    page = client.get(f"/orgs/{org.public_id}/members/").content.decode()
    assert "locked out" in page and 'aria-label="Unlock sign-in of bob"' in page
    membership = bob.memberships.get(organization=org)
    response = client.post(f"/orgs/{org.public_id}/members/{membership.pk}/unlock/", follow=True)
    assert "bob can sign in again." in response.content.decode()
    assert "locked out" not in response.content.decode()
    assert AuditEntry.objects.filter(organization=org, action="member.unlock", target="bob", actor=alice).exists()
    assert sign_in(bobs, "bob").status_code == 302
