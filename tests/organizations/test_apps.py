"""Apps: the list, creating one (credentials shown once), renaming, disabling, deleting, retention override."""

from __future__ import annotations

from datetime import timedelta

from organizations.models import App, AuditEntry, Credential, Membership, Role
from telemetry.models import Event
from tests.factories import make_app, make_batch


def test_the_app_list_shows_last_event_or_the_next_step(login, alice, org, app, events):
    other = make_app(org, name="quiet-tool")[0]
    events(app, 1)
    page = login(alice).get(f"/orgs/{org.public_id}/apps/")
    assert page.status_code == 200
    assert b"my-cli" in page.content and b"quiet-tool" in page.content
    assert b"no events yet" in page.content
    assert page.content.count(b"<time datetime=") == 1
    assert other.public_id.encode() in page.content


def test_an_organization_without_apps_says_what_to_do(login, alice, bob, org):
    assert b"Create an app to get the credentials" in login(alice).get(f"/orgs/{org.public_id}/apps/").content
    viewer_page = login(bob).get(f"/orgs/{org.public_id}/apps/")
    assert b"An admin of Alice Org creates apps" in viewer_page.content
    assert b"New app" not in viewer_page.content


def test_creating_an_app_shows_its_token_once(login, alice, org):
    client = login(alice)
    assert client.get(f"/orgs/{org.public_id}/apps/new/").status_code == 200
    response = client.post(f"/orgs/{org.public_id}/apps/new/", {"name": "Deploy Tool"})
    app = App.objects.get(name="Deploy Tool")
    assert response.url == f"/orgs/{org.public_id}/apps/{app.public_id}/credentials/"

    first = client.get(response.url)
    assert first["Cache-Control"] == "no-store"
    issued = first.content.decode()
    token_start = issued.index('id="issued-token"')
    token = issued[issued.index(">", token_start) + 1 : issued.index("<", token_start)]
    assert token.startswith("clk_")
    assert Credential.objects.get(app=app).token_prefix == token[:12]
    assert f'export CLACKS_TOKEN="{token}"' in issued
    assert '.service_name("deploy-tool")' in issued

    again = client.get(response.url).content.decode()
    assert token not in again
    assert "Copy these now" not in again
    assert token[:12] + "…" in again
    assert AuditEntry.objects.filter(organization=org, action="app.create", target=app.public_id).exists()


def test_an_app_needs_a_name_of_at_most_100_characters(login, alice, org):
    client = login(alice)
    assert b"This field is required." in client.post(f"/orgs/{org.public_id}/apps/new/", {"name": ""}).content
    too_long = client.post(f"/orgs/{org.public_id}/apps/new/", {"name": "x" * 101})
    assert b"Ensure this value has at most 100 characters (it has 101)." in too_long.content
    assert not App.objects.exists()


def test_viewers_cannot_create_apps(login, bob, org):
    client = login(bob)
    assert client.get(f"/orgs/{org.public_id}/apps/new/").status_code == 403
    assert client.post(f"/orgs/{org.public_id}/apps/new/", {"name": "sneaky"}).status_code == 403
    assert not App.objects.exists()


def test_an_admin_creates_apps(login, bob, org):
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)
    login(bob).post(f"/orgs/{org.public_id}/apps/new/", {"name": "bobs-tool"})
    assert App.objects.filter(name="bobs-tool", organization=org).exists()


def settings_url(app) -> str:
    return f"/orgs/{app.organization.public_id}/apps/{app.public_id}/settings/"


def test_alice_renames_an_app(login, alice, app):
    client = login(alice)
    assert client.get(settings_url(app)).status_code == 200
    client.post(settings_url(app), {"name": "renamed-cli"})
    app.refresh_from_db()
    assert app.name == "renamed-cli"
    assert AuditEntry.objects.get(action="app.rename").details == {"from": "my-cli", "to": "renamed-cli"}


def test_a_blank_name_is_a_form_error(login, alice, app):
    response = login(alice).post(settings_url(app), {"name": " "})
    assert response.status_code == 400
    assert b"This field is required." in response.content
    app.refresh_from_db()
    assert app.name == "my-cli"


def test_disabling_an_app_refuses_its_ingest_at_once_and_enabling_restores_it(login, alice, app, signed_post):
    assert signed_post(app, make_batch(1)).status_code == 200  # cached for ingest now
    client = login(alice)
    client.post(settings_url(app) + "state/", {"is_active": ""})
    app.refresh_from_db()
    assert app.is_active is False
    assert signed_post(app, make_batch(1)).status_code == 403
    assert AuditEntry.objects.filter(action="app.disable").exists()

    client.post(settings_url(app) + "state/", {"is_active": "on"})
    assert signed_post(app, make_batch(1)).status_code == 200
    assert AuditEntry.objects.filter(action="app.enable").exists()


def test_deleting_needs_the_apps_name_typed(login, alice, app, events):
    events(app, 3)
    response = login(alice).post(settings_url(app) + "delete/", {"confirm": "my-cl"})
    assert response.status_code == 400
    assert "Type “my-cli” exactly".encode() in response.content
    assert App.objects.filter(pk=app.pk).exists()
    assert Event.objects.filter(app=app).count() == 3


def test_deleting_an_app_deletes_its_events_and_credentials_and_refuses_its_ingest(login, alice, org, app, events, signed_post):
    events(app, 7)
    keep = make_app(org, name="keep")[0]
    events(keep, 2)
    signed_post(app, make_batch(1))
    response = login(alice).post(settings_url(app) + "delete/", {"confirm": "my-cli"}, follow=True)
    assert b"my-cli and its 8 events are deleted" in response.content
    assert not App.objects.filter(pk=app.pk).exists()
    assert not Credential.objects.filter(app_id=app.pk).exists()
    assert Event.objects.filter(app_id=app.pk).count() == 0
    assert Event.objects.filter(app=keep).count() == 2
    assert signed_post(app, make_batch(1)).status_code == 401
    entry = AuditEntry.objects.get(action="app.delete")
    assert entry.details == {"name": "my-cli", "events": 8}


def test_viewers_cannot_see_or_change_app_settings(login, bob, app):
    client = login(bob)
    assert client.get(settings_url(app)).status_code == 403
    assert client.post(settings_url(app), {"name": "x"}).status_code == 403
    assert client.post(settings_url(app) + "state/", {"is_active": ""}).status_code == 403
    assert client.post(settings_url(app) + "retention/", {"choice": "7"}).status_code == 403
    assert client.post(settings_url(app) + "delete/", {"confirm": "my-cli"}).status_code == 403
    app.refresh_from_db()
    assert (app.name, app.is_active, app.retention_override) == ("my-cli", True, False)


def test_the_app_retention_override_with_preview_and_last_run(login, alice, app, events):
    events(app, 4, age=timedelta(days=20))
    events(app, 1, age=timedelta(days=2))
    client = login(alice)
    page = client.get(settings_url(app))
    assert b"Retention last ran: <strong>never</strong>" in page.content
    assert b"the organization&#x27;s default" in page.content or b"the organization's default" in page.content

    preview = client.post(settings_url(app) + "retention/", {"choice": "7", "preview": "1"})
    assert preview.status_code == 200
    assert b"Saving this would delete <strong>4</strong> events" in preview.content
    app.refresh_from_db()
    assert app.retention_override is False

    client.post(settings_url(app) + "retention/", {"choice": "7"})
    app.refresh_from_db()
    assert (app.retention_override, app.retention_days, app.effective_retention_days) == (True, 7, 7)
    entry = AuditEntry.objects.get(action="retention.app")
    assert entry.details == {"from": {"override": False, "days": None}, "to": {"override": True, "days": 7}}
    assert b"4 of them already past retention" in client.get(settings_url(app)).content

    client.post(settings_url(app) + "retention/", {"choice": "inherit"})
    app.refresh_from_db()
    assert (app.retention_override, app.retention_days, app.effective_retention_days) == (False, None, 90)


def test_an_app_can_keep_events_forever_while_the_organization_does_not(login, alice, app):
    login(alice).post(settings_url(app) + "retention/", {"choice": "forever"})
    app.refresh_from_db()
    assert (app.retention_override, app.effective_retention_days) == (True, None)
