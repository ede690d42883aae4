"""The erasure page: count, confirm by typing the id again, erase; admins and owners only."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from organizations.models import AuditEntry
from telemetry.models import Event
from tests.factories import make_app, make_event
from tests.lifecycle.conftest import store_events

ERASED = "client_" + "e" * 64
KEPT = "client_" + "k" * 64


def url(org) -> str:
    return reverse("dashboard:erase_user", args=[org.public_id])


def events_of(user_id: str, n: int) -> list[dict]:
    return [make_event(user_id=user_id, event_id=str(uuid.uuid4())) for _ in range(n)]


@pytest.fixture
def apps(org):
    first, _ = make_app(org, name="first-cli")
    second, _ = make_app(org, name="second-cli")
    store_events(first, events_of(ERASED, 3) + events_of(KEPT, 1))
    store_events(second, events_of(ERASED, 2))
    return first, second


def preview(client, org, user_id=ERASED):
    return client.post(url(org), {"step": "preview", "user_id": user_id})


def confirm(client, org, user_id=ERASED, typed=ERASED, **kwargs):
    return client.post(url(org), {"step": "erase", "user_id": user_id, "confirm_user_id": typed}, **kwargs)


def test_the_page_asks_for_a_user_id(client, alice, org):
    client.force_login(alice)

    response = client.get(url(org))

    assert response.status_code == 200
    assert 'name="user_id"' in response.content.decode()
    assert 'name="confirm_user_id"' not in response.content.decode()


def test_counting_shows_how_many_events_each_app_would_lose_and_deletes_nothing(client, alice, org, apps):
    client.force_login(alice)

    response = preview(client, org)

    html = response.content.decode()
    assert response.status_code == 200
    assert "5 events</strong>" in html
    assert f"first-cli <code>{apps[0].public_id}</code></td><td>3</td>" in html
    assert f"second-cli <code>{apps[1].public_id}</code></td><td>2</td>" in html
    assert 'name="confirm_user_id"' in html
    assert Event.objects.filter(user_id=ERASED).count() == 5


def test_typing_the_id_again_erases_the_users_events_in_every_app(client, alice, org, apps):
    client.force_login(alice)

    response = confirm(client, org, follow=True)

    assert response.redirect_chain == [(url(org), 302)]
    assert "Erased 5 events of that user across 2 apps." in response.content.decode()
    assert not Event.objects.filter(user_id=ERASED).exists()
    assert Event.objects.filter(user_id=KEPT).count() == 1
    entry = AuditEntry.objects.get(action="user.erase")
    assert (entry.actor, entry.details["events"], entry.details["via"]) == (alice, 5, "dashboard")


def test_a_mistyped_confirmation_erases_nothing_and_says_why(client, alice, org, apps):
    client.force_login(alice)

    response = confirm(client, org, typed=ERASED[:-1])

    html = response.content.decode()
    assert response.status_code == 200
    assert "This does not match the user id being erased." in html
    assert "5 events</strong>" in html  # the counts stay on the page next to the error
    assert Event.objects.filter(user_id=ERASED).count() == 5
    assert not AuditEntry.objects.filter(action="user.erase").exists()


def test_a_blank_user_id_is_a_form_error(client, alice, org):
    client.force_login(alice)

    assert "This field is required." in preview(client, org, user_id="  ").content.decode()
    assert "This field is required." in confirm(client, org, user_id="", typed="").content.decode()
    assert not AuditEntry.objects.filter(action="user.erase").exists()


def test_a_user_without_events_can_still_be_recorded_as_erased(client, alice, org, apps):
    client.force_login(alice)
    nobody = "client_" + "0" * 64

    assert "No events are stored for" in preview(client, org, user_id=nobody).content.decode()
    confirm(client, org, user_id=nobody, typed=nobody)

    assert AuditEntry.objects.get(action="user.erase").details["events"] == 0
    assert Event.objects.count() == 6


def test_an_admin_may_erase(client, dana, org, apps):
    client.force_login(dana)

    assert confirm(client, org).status_code == 302
    assert not Event.objects.filter(user_id=ERASED).exists()


def test_a_viewer_may_neither_count_nor_erase(client, bob, org, apps):
    client.force_login(bob)

    assert client.get(url(org)).status_code == 403
    assert preview(client, org).status_code == 403
    assert confirm(client, org).status_code == 403
    assert Event.objects.filter(user_id=ERASED).count() == 5


def test_charlie_cannot_erase_in_alices_organization_nor_reach_it_from_his(client, charlie, org, apps, charlies_org):
    client.force_login(charlie)

    assert client.get(url(org)).status_code == 404
    assert confirm(client, org).status_code == 404
    # His own organization's erasure touches only his own apps.
    confirm(client, charlies_org)
    assert Event.objects.filter(user_id=ERASED).count() == 5


def test_erasing_without_the_csrf_token_is_refused(alice, org, apps):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    assert confirm(client, org).status_code == 403
    assert Event.objects.filter(user_id=ERASED).count() == 5


def test_admins_find_the_page_in_the_organizations_navigation_and_viewers_do_not(client, alice, bob, org):
    members = reverse("organizations:members", args=[org.public_id])
    client.force_login(alice)
    assert f'href="{url(org)}"' in client.get(members).content.decode()

    client.force_login(bob)
    assert f'href="{url(org)}"' not in client.get(members).content.decode()
