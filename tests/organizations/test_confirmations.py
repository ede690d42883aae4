"""Dangerous actions each have their own page saying what will happen before anything does."""

from __future__ import annotations

from organizations.models import App, Credential
from telemetry.models import Event


def app_url(app, tail: str) -> str:
    return f"/orgs/{app.organization.public_id}/apps/{app.public_id}/{tail}"


def test_disabling_an_app_is_confirmed_on_its_own_page(login, alice, app):
    client = login(alice)
    settings_page = client.get(app_url(app, "settings/")).content.decode()
    assert f'href="{app_url(app, "settings/state/")}"' in settings_page  # a link, not a form that disables

    page = client.get(app_url(app, "settings/state/")).content.decode()
    app.refresh_from_db()
    assert app.is_active is True  # looking changes nothing
    assert "Ingest answers 403 to this app&#x27;s clients at once" in page
    assert f'href="{app_url(app, "settings/")}">Cancel</a>' in page


def test_a_disabled_apps_state_page_leads_back_to_its_settings(login, alice, app):
    app.is_active = False
    app.save(update_fields=["is_active"])
    response = login(alice).get(app_url(app, "settings/state/"))
    assert response.status_code == 302 and response.url == app_url(app, "settings/")


def test_deleting_an_app_says_how_many_events_go_and_needs_the_name(login, alice, app, events):
    events(app, 4)
    client = login(alice)
    page = client.get(app_url(app, "settings/delete/")).content.decode()
    assert "All 4 of its stored events are deleted" in page
    assert "Type the app&#x27;s name to confirm" in page
    assert App.objects.filter(pk=app.pk).exists()

    wrong = client.post(app_url(app, "settings/delete/"), {"confirm": "nope"})
    assert wrong.status_code == 400 and "All 4 of its stored events" in wrong.content.decode()
    assert Event.objects.filter(app=app).count() == 4


def test_revoking_the_last_credential_set_asks_first(login, alice, app):
    credential = Credential.objects.get(app=app)
    client = login(alice)
    assert "Revoke…" in client.get(app_url(app, "credentials/")).content.decode()

    # A plain POST (an old form, a script) is not enough for the last set: it gets the question.
    asked = client.post(app_url(app, "credentials/revoke/"), {"credential": credential.pk})
    assert asked.status_code == 200
    assert "only active set: no client can send events" in asked.content.decode()
    credential.refresh_from_db()
    assert credential.revoked_at is None

    done = client.post(app_url(app, "credentials/revoke/"), {"credential": credential.pk, "confirmed": "yes"})
    assert done.status_code == 302
    credential.refresh_from_db()
    assert credential.revoked_at is not None


def test_revoking_one_of_two_sets_needs_no_extra_step(login, alice, app):
    from organizations import services

    services.rotate_credentials(app, by=alice)
    old = Credential.objects.filter(app=app).order_by("created_at", "pk").first()
    response = login(alice).post(app_url(app, "credentials/revoke/"), {"credential": old.pk})
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.revoked_at is not None


def test_the_organizations_rename_form_has_no_disable_checkbox(login, alice, org):
    page = login(alice).get(f"/orgs/{org.public_id}/settings/").content.decode()
    assert 'name="is_active"' not in page
    assert f'href="/orgs/{org.public_id}/settings/state/">Disable the organization…</a>' in page


def test_enabling_a_disabled_organization_is_offered_on_the_same_page(login, alice, org):
    org.is_active = False
    org.save(update_fields=["is_active"])
    client = login(alice)
    page = client.get(f"/orgs/{org.public_id}/settings/state/").content.decode()
    assert "Enable the organization" in page
    client.post(f"/orgs/{org.public_id}/settings/state/", {"is_active": "on"})
    org.refresh_from_db()
    assert org.is_active is True
