"""The session list: device, address and last use of each signed-in browser; signing others out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from organizations.models import AuditEntry, UserSession
from organizations.sessions import describe_user_agent
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)


def browser(user_agent: str, address: str) -> Client:
    return Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)


def sign_in(client: Client, username: str = "alice", password: str = PASSWORD) -> None:
    assert client.post("/accounts/login/", {"username": username, "password": password}).status_code == 302


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (CHROME_MAC, "Chrome on macOS"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0", "Edge on Windows"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown browser"),
    ],
)
def test_the_device_is_named_from_the_user_agent(user_agent, device):
    assert describe_user_agent(user_agent) == device


def test_the_page_lists_each_signed_in_browser(alice, org):
    laptop, phone = browser(FIREFOX_LINUX, "10.0.0.1"), browser(SAFARI_IPHONE, "10.0.0.2")
    sign_in(laptop)
    sign_in(phone)
    page = laptop.get("/accounts/sessions/").content.decode()
    assert "Firefox on Linux" in page and "10.0.0.1" in page
    assert "Safari on iPhone" in page and "10.0.0.2" in page
    assert page.index("Firefox on Linux") < page.index("this browser") < page.index("Safari on iPhone")
    assert "Sign out everywhere else" in page
    # Another user's sessions are not listed.
    other = browser(CHROME_MAC, "10.0.0.3")
    sign_in(other, "bob")
    assert "Chrome on macOS" not in laptop.get("/accounts/sessions/").content.decode()


def test_sign_out_everywhere_else(alice, org):
    laptop, phone, tablet = (browser(ua, f"10.0.0.{n}") for n, ua in enumerate((FIREFOX_LINUX, SAFARI_IPHONE, CHROME_MAC)))
    for client in (laptop, phone, tablet):
        sign_in(client)
    response = laptop.post("/accounts/sessions/end-others/", follow=True)
    assert "Signed out of 2 other sessions." in response.content.decode()
    assert phone.get("/orgs/").url.startswith("/accounts/login/")
    assert tablet.get("/orgs/").url.startswith("/accounts/login/")
    assert laptop.get("/orgs/").status_code == 200
    assert UserSession.objects.filter(user=alice).count() == 1
    assert Session.objects.count() == 1
    assert AuditEntry.objects.filter(organization=org, action="sessions.end_others", details={"ended": 2}).exists()


def test_sign_out_one_other_session(alice, bob, org):
    laptop, phone = browser(FIREFOX_LINUX, "10.0.0.1"), browser(SAFARI_IPHONE, "10.0.0.2")
    sign_in(laptop)
    sign_in(phone)
    theirs = browser(CHROME_MAC, "10.0.0.3")
    sign_in(theirs, "bob")
    bobs = UserSession.objects.get(user=bob)
    assert laptop.post(f"/accounts/sessions/{bobs.pk}/end/").status_code == 404  # not alice's
    assert theirs.get("/orgs/").status_code == 200
    mine = UserSession.objects.get(user=alice, user_agent=SAFARI_IPHONE)
    laptop.post(f"/accounts/sessions/{mine.pk}/end/")
    assert phone.get("/orgs/").url.startswith("/accounts/login/")
    assert laptop.get("/orgs/").status_code == 200


def test_changing_the_password_signs_out_the_other_sessions(alice, org):
    laptop, phone = browser(FIREFOX_LINUX, "10.0.0.1"), browser(SAFARI_IPHONE, "10.0.0.2")
    sign_in(laptop)
    sign_in(phone)
    new = "another-long-pass-2"
    response = laptop.post(
        "/accounts/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}, follow=True
    )
    assert "Your other sessions are signed out." in response.content.decode()
    assert phone.get("/orgs/").url.startswith("/accounts/login/")
    assert laptop.get("/orgs/").status_code == 200
    page = laptop.get("/accounts/sessions/").content.decode()
    assert "Firefox on Linux" in page and "Safari on iPhone" not in page
    assert AuditEntry.objects.filter(organization=org, action="password.change").exists()


def test_last_seen_is_written_at_most_once_a_minute(alice, org):
    laptop = browser(FIREFOX_LINUX, "10.0.0.1")
    sign_in(laptop)
    entry = UserSession.objects.get(user=alice)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    UserSession.objects.update(last_seen=an_hour_ago)
    laptop.get("/orgs/")
    entry.refresh_from_db()
    assert entry.last_seen == an_hour_ago  # seen less than a minute ago: no write

    session = laptop.session
    session["clacks_seen"] -= 61
    session.save()
    laptop.get("/orgs/", REMOTE_ADDR="10.0.0.7")
    entry.refresh_from_db()
    assert entry.last_seen > an_hour_ago and entry.ip_address == "10.0.0.7"


def test_signing_out_removes_the_session_from_the_list(alice, org):
    laptop = browser(FIREFOX_LINUX, "10.0.0.1")
    sign_in(laptop)
    assert UserSession.objects.filter(user=alice).count() == 1
    laptop.post("/accounts/logout/")
    assert not UserSession.objects.filter(user=alice).exists()


def test_expired_sessions_drop_off_the_list(alice, org):
    laptop, phone = browser(FIREFOX_LINUX, "10.0.0.1"), browser(SAFARI_IPHONE, "10.0.0.2")
    sign_in(laptop)
    sign_in(phone)
    Session.objects.filter(session_key=phone.session.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    page = laptop.get("/accounts/sessions/").content.decode()
    assert "Safari on iPhone" not in page
    assert UserSession.objects.filter(user=alice).count() == 1
