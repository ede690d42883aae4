"""Times in the viewer's zone: the profile's choice, else the browser's, else UTC (docs/time.md)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone

from organizations.models import Profile
from organizations.templatetags.clacks import timetag
from organizations.timezones import COOKIE, describe, set_profile_time_zone, zone_named
from tests.factories import PASSWORD

MOMENT = datetime(2026, 3, 10, 12, 30, 5, tzinfo=timezone.utc)


def test_timetag_shows_the_active_zone_with_its_abbreviation_and_utc_on_hover():
    with django_timezone.override(zone_named("Europe/Paris")):
        assert str(timetag(MOMENT)) == (
            '<time datetime="2026-03-10T12:30:05Z" title="2026-03-10 12:30:05 UTC">10 Mar 2026, 13:30 CET</time>'
        )
        assert describe(MOMENT) == "CET, UTC+01:00"
    with django_timezone.override(zone_named("America/Los_Angeles")):
        assert str(timetag(MOMENT, "date")).endswith(">10 Mar 2026</time>")
        assert "05:30 PDT" in str(timetag(MOMENT))  # summer time had started there on 8 March
    assert str(timetag(MOMENT)).endswith(">10 Mar 2026, 12:30 UTC</time>")
    assert describe(MOMENT) == "UTC"
    assert timetag(None) == ""


def test_zone_names_are_checked():
    assert zone_named("Europe/Paris") is not None
    assert zone_named("Mars/Olympus") is None and zone_named("") is None and zone_named(None) is None
    with pytest.raises(ValueError):
        set_profile_time_zone(None, name="Mars/Olympus")


def zone_shown(client, path: str) -> str:
    page = client.get(path).content.decode()
    return re.search(r"times are in ([A-Za-z_/+0-9-]+)", page).group(1)


@pytest.mark.django_db
def test_the_profile_zone_wins_over_the_browser_cookie_and_is_saved(client, alice, org):
    client.force_login(alice)
    assert zone_shown(client, "/accounts/profile/") == "UTC"
    client.cookies[COOKIE] = "Asia/Tokyo"
    assert zone_shown(client, "/accounts/profile/") == "Asia/Tokyo"
    page = client.get("/accounts/profile/").content.decode()
    assert "Follow my browser (Asia/Tokyo)" in page and "JST, UTC+09:00" in page

    response = client.post("/accounts/profile/", {"time_zone": "Europe/Paris"}, follow=True)
    assert "Times are now shown in Europe/Paris." in response.content.decode()
    assert Profile.objects.get(user=alice).time_zone == "Europe/Paris"
    assert zone_shown(client, f"/orgs/{org.public_id}/members/") == "Europe/Paris"

    client.post("/accounts/profile/", {"time_zone": ""})
    assert zone_shown(client, "/accounts/profile/") == "Asia/Tokyo"


@pytest.mark.django_db
def test_a_bad_zone_is_a_form_error_and_a_bad_cookie_is_ignored(client, alice):
    client.force_login(alice)
    client.cookies[COOKIE] = "<script>"
    assert zone_shown(client, "/accounts/profile/") == "UTC"
    response = client.post("/accounts/profile/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Profile.objects.filter(user=alice).exists()


@pytest.mark.django_db
def test_the_profile_needs_a_sign_in(client):
    response = client.get("/accounts/profile/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_event_times_follow_the_zone(client, alice, org, app):
    from tests.alerts.conftest import store

    store(app, at=MOMENT - timedelta(days=0))
    client.force_login(alice)
    client.post("/accounts/profile/", {"time_zone": "Asia/Kolkata"})
    page = client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/events/").content.decode()
    assert "10 Mar 2026, 18:00 IST" in page


@pytest.mark.django_db
def test_the_explorer_reads_its_since_and_until_in_the_viewer_zone_and_says_so(client, alice, org, app):
    from tests.alerts.conftest import store

    store(app, at=MOMENT - timedelta(minutes=30))  # 12:00 UTC, 21:00 in Tokyo
    store(app, at=MOMENT + timedelta(minutes=30))  # 13:00 UTC, 22:00 in Tokyo
    client.force_login(alice)
    client.post("/accounts/profile/", {"time_zone": "Asia/Tokyo"})
    page = client.get(
        f"/orgs/{org.public_id}/apps/{app.public_id}/events/", {"since": "2026-03-10T21:30"}
    ).content.decode()
    assert "Since (Asia/Tokyo)" in page and "Until (Asia/Tokyo)" in page
    assert "10 Mar 2026, 22:00 JST" in page and "10 Mar 2026, 21:00 JST" not in page
