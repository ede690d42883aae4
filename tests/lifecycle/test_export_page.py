"""The export page: admins and owners download CSV or JSON Lines; viewers and outsiders cannot."""

from __future__ import annotations

import uuid

import orjson
import pytest
from django.test import Client
from django.urls import reverse

from organizations.models import AuditEntry
from telemetry import lifecycle
from tests.factories import make_app, make_event
from tests.lifecycle.conftest import store_events

IN_RANGE = "2026-11-20T10:15:30Z"


def url(app) -> str:
    return reverse("dashboard:export_events", args=[app.organization.public_id, app.public_id])


@pytest.fixture
def stored(app):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    store_events(
        app,
        [
            make_event(event_id=ids[0], timestamp="2026-11-19T23:59:59Z"),
            make_event(event_id=ids[1], timestamp=IN_RANGE),
            make_event(event_id=ids[2], timestamp="2026-11-21T00:00:00Z"),
        ],
    )
    return ids


def download(client, app, **fields):
    data = {"date_from": "2026-11-20", "date_to": "2026-11-20", "format": "jsonl", **fields}
    return client.post(url(app), data)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_page_offers_a_date_range_and_both_formats(client, alice, app):
    client.force_login(alice)

    response = client.get(url(app))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="date"' in html and 'name="date_from"' in html and 'name="date_to"' in html
    assert 'value="csv"' in html and 'value="jsonl"' in html
    assert "csrfmiddlewaretoken" in html


def test_an_admin_downloads_the_days_events_as_json_lines(client, dana, app, stored):
    client.force_login(dana)

    response = download(client, app, format="jsonl")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == f'attachment; filename="{app.public_id}_2026-11-20_2026-11-20.jsonl"'
    assert response["Cache-Control"] == "no-store"
    lines = body(response).splitlines()
    assert [orjson.loads(line)["event_id"] for line in lines] == [stored[1]]


def test_the_owner_downloads_csv_identical_to_the_command_line_export(client, alice, app, stored):
    client.force_login(alice)

    response = download(client, app, format="csv", date_from="2026-11-19", date_to="2026-11-21")

    expected = b"".join(
        lifecycle.export_events(
            app, lifecycle.parse_time_range("2026-11-19", "2026-11-21"), export_format=lifecycle.EXPORT_FORMATS["csv"]
        )
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert body(response) == expected
    assert expected.count(b"\r\n") == 4  # header and three events


def test_each_download_is_audited_with_who_what_and_which_range(client, alice, app, stored):
    client.force_login(alice)

    body(download(client, app, format="csv"))

    entry = AuditEntry.objects.get(action="events.export")
    assert (entry.actor, entry.target) == (alice, app.public_id)
    assert entry.details == {
        "format": "csv",
        "from": "2026-11-20T00:00:00+00:00",
        "to": "2026-11-21T00:00:00+00:00",
        "via": "dashboard",
    }


def test_a_viewer_may_not_export(client, bob, app, stored):
    client.force_login(bob)

    assert client.get(url(app)).status_code == 403
    assert download(client, app).status_code == 403
    assert not AuditEntry.objects.filter(action="events.export").exists()


def test_charlie_gets_a_404_for_alices_app(client, charlie, app, stored):
    client.force_login(charlie)

    for response in (client.get(url(app)), download(client, app)):
        assert response.status_code == 404
        assert b"<h1>Not found</h1>" in response.content and b"my-cli" not in response.content


def test_an_app_of_another_organization_is_not_found_under_alices(client, alice, org, charlies_org):
    strangers_app, _ = make_app(charlies_org, name="stranger")
    client.force_login(alice)

    response = client.get(reverse("dashboard:export_events", args=[org.public_id, strangers_app.public_id]))

    assert response.status_code == 404
    assert b"<h1>Not found</h1>" in response.content and b"stranger" not in response.content


def test_signed_out_visitors_are_sent_to_sign_in(client, app):
    response = client.get(url(app))

    assert response.status_code == 302
    assert response.url.startswith(reverse("organizations:login"))


def test_an_end_before_the_start_is_a_form_error_not_a_download(client, alice, app):
    client.force_login(alice)

    response = download(client, app, date_from="2026-11-21", date_to="2026-11-20")

    assert response.status_code == 200
    assert not response.streaming
    assert "The end date is before the start date." in response.content.decode()
    assert not AuditEntry.objects.filter(action="events.export").exists()


def test_a_date_with_no_next_day_is_a_form_error_not_a_500(client, alice, app):
    client.force_login(alice)

    response = download(client, app, date_to="9999-12-31")

    assert response.status_code == 200
    assert "The end date is too far in the future." in response.content.decode()


def test_a_missing_date_or_unknown_format_is_a_form_error(client, alice, app):
    client.force_login(alice)

    response = download(client, app, date_from="", format="xml")

    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html
    assert "Select a valid choice. xml is not one of the available choices." in html


def test_a_download_without_the_csrf_token_is_refused(alice, app):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = download(client, app)

    assert response.status_code == 403
    assert not AuditEntry.objects.filter(action="events.export").exists()


def test_admins_find_the_page_in_the_apps_navigation_and_viewers_do_not(client, alice, bob, app):
    overview = reverse("dashboard:app_overview", args=[app.organization.public_id, app.public_id])
    client.force_login(alice)
    assert f'href="{url(app)}"' in client.get(overview).content.decode()

    client.force_login(bob)
    assert f'href="{url(app)}"' not in client.get(overview).content.decode()
