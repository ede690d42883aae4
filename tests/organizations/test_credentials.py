"""Credentials: reveal (audited), rotate with overlap, revoke, the snippet and "last event received"."""

from __future__ import annotations

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from organizations.models import AuditEntry, Credential, Membership, Role
from tests.factories import make_app, make_batch
from tests.organizations.conftest import store_events


def url(app, action: str = "") -> str:
    return f"/orgs/{app.organization.public_id}/apps/{app.public_id}/credentials/{action}"


def test_the_credentials_page_shows_ids_endpoint_and_no_secret(login, alice, app, secret, token, settings):
    settings.CLACKS_PUBLIC_URL = "https://clacks.example.org"
    page = login(alice).get(url(app))
    body = page.content.decode()
    assert page.status_code == 200
    assert app.public_id in body and app.organization.public_id in body
    assert f"https://clacks.example.org/v1/ingest/{app.organization.public_id}/{app.public_id}" in body
    assert 'export CLACKS_ENDPOINT="https://clacks.example.org"' in body
    assert '.endpoint(env("CLACKS_ENDPOINT"))' in body
    assert "openssl dgst -sha256 -hmac" in body
    assert secret not in body
    assert token not in body
    assert token[:12] in body


def test_revealing_the_secret_is_a_post_and_is_audited(login, alice, app, secret):
    credential = Credential.objects.get(app=app)
    client = login(alice)
    assert client.get(url(app, "reveal/")).status_code == 405
    response = client.post(url(app, "reveal/"), {"credential": credential.pk})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert secret in response.content.decode()
    entry = AuditEntry.objects.get(action="credentials.reveal")
    assert (entry.actor, entry.target, entry.details) == (alice, app.public_id, {"token_prefix": credential.token_prefix})


def test_a_revealed_secret_goes_into_the_env_snippet(login, alice, app, secret):
    credential = Credential.objects.get(app=app)
    body = login(alice).post(url(app, "reveal/"), {"credential": credential.pk}).content.decode()
    assert f'export CLACKS_SECRET="{secret}"' in body


def test_a_viewer_can_neither_see_credentials_nor_reveal(login, bob, app, secret):
    credential = Credential.objects.get(app=app)
    client = login(bob)
    assert client.get(url(app)).status_code == 403
    response = client.post(url(app, "reveal/"), {"credential": credential.pk})
    assert response.status_code == 403
    assert secret not in response.content.decode()
    assert not AuditEntry.objects.filter(action="credentials.reveal").exists()


def test_an_admin_can_reveal(login, bob, app, secret):
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)
    credential = Credential.objects.get(app=app)
    assert secret in login(bob).post(url(app, "reveal/"), {"credential": credential.pk}).content.decode()


def test_a_credential_of_another_app_cannot_be_revealed_through_this_one(login, alice, charlie, app):
    from tests.factories import make_app, make_org

    foreign_app, issued = make_app(make_org(name="Charlie Corp", owner=charlie), name="theirs")
    foreign = Credential.objects.get(app=foreign_app)
    response = login(alice).post(url(app, "reveal/"), {"credential": foreign.pk}, follow=True)
    assert issued.secret not in response.content.decode()
    assert b"no longer active" in response.content
    assert not AuditEntry.objects.filter(action="credentials.reveal").exists()


def test_rotating_keeps_the_old_set_working_until_it_is_revoked(login, alice, app, secret, signed_post):
    client = login(alice)
    response = client.post(url(app, "rotate/"))
    assert response.status_code == 302
    page = client.get(url(app)).content.decode()
    new_secret = re.search(r'id="issued-secret" class="mono break">([^<]+)<', page).group(1)
    new_token = re.search(r'id="issued-token" class="mono break">([^<]+)<', page).group(1)
    assert new_secret != secret
    assert f'export CLACKS_TOKEN="{new_token}"' in page

    assert signed_post(app, make_batch(1)).status_code == 200
    assert signed_post(app, make_batch(1), key=new_secret).status_code == 200

    old = Credential.objects.filter(app=app).order_by("pk").first()
    client.post(url(app, "revoke/"), {"credential": old.pk})
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert signed_post(app, make_batch(1)).status_code == 401
    assert signed_post(app, make_batch(1), key=new_secret).status_code == 200
    actions = list(AuditEntry.objects.filter(target=app.public_id).values_list("action", flat=True))
    assert "credentials.rotate" in actions and "credentials.revoke" in actions


def test_revoking_the_only_set_stops_ingest_and_says_so(login, alice, app, signed_post):
    credential = Credential.objects.get(app=app)
    client = login(alice)
    assert b"The only active set" in client.get(url(app)).content
    client.post(url(app, "revoke/"), {"credential": credential.pk, "confirmed": "yes"})
    assert signed_post(app, make_batch(1)).status_code == 401
    assert b"No active credentials" in client.get(url(app)).content


def test_revoking_twice_is_a_message_not_an_error(login, alice, app):
    credential = Credential.objects.get(app=app)
    client = login(alice)
    client.post(url(app, "revoke/"), {"credential": credential.pk, "confirmed": "yes"})
    again = client.post(url(app, "revoke/"), {"credential": credential.pk, "confirmed": "yes"}, follow=True)
    assert again.status_code == 200
    assert b"already revoked" in again.content


def test_viewers_cannot_rotate_or_revoke(login, bob, app):
    credential = Credential.objects.get(app=app)
    client = login(bob)
    assert client.post(url(app, "rotate/")).status_code == 403
    assert client.post(url(app, "revoke/"), {"credential": credential.pk}).status_code == 403
    assert Credential.objects.filter(app=app, revoked_at__isnull=True).count() == 1


def test_last_event_received_says_no_events_then_shows_the_latest(login, alice, app, signed_post):
    client = login(alice)
    assert b"No events yet." in client.get(url(app)).content
    signed_post(app, make_batch(2))
    page = client.get(url(app)).content
    assert b"Your setup works" in page
    assert b"<time datetime=" in page


def test_the_credentials_page_costs_the_same_queries_with_one_event_or_many_apps_and_events(login, alice, org, app, signed_post):
    signed_post(app, make_batch(1))
    client = login(alice)
    client.get(url(app))  # per-process caches filled, as on a running server
    with CaptureQueriesContext(connection) as one:
        assert b"Your setup works" in client.get(url(app)).content

    signed_post(app, make_batch(50))
    for i in range(5):
        store_events(make_app(org, name=f"cli-{i}")[0], 10)
    with CaptureQueriesContext(connection) as many:
        assert b"Your setup works" in client.get(url(app)).content

    assert len(many) == len(one)
    assert sum('FROM "telemetry_event"' in q["sql"] for q in many.captured_queries) == 1