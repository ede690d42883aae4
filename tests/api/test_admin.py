"""Admin-scope calls: apps, credentials and retention, through the dashboard's own services, audited."""

from __future__ import annotations

import pytest

from organizations.models import App, AuditEntry, Credential
from tests.factories import make_batch


@pytest.fixture
def admin_key(make_key):
    return make_key("read", "admin")


def path(org, app=None, suffix: str = "") -> str:
    base = f"/api/v1/orgs/{org.public_id}/apps/"
    return base + (f"{app.public_id}/" if app else "") + suffix


def audit(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).latest("pk")


def test_creating_an_app_returns_its_credentials_once_and_ingest_takes_them(api, admin_key, org, signed_post):
    response = api("POST", path(org), admin_key, data={"name": "  new-tool  "})
    assert response.status_code == 201
    body = response.json()
    app = App.objects.get(public_id=body["app"]["id"])
    assert app.name == "new-tool" and app.organization == org
    credential = Credential.objects.get(app=app)
    assert body["credentials"]["token_prefix"] == credential.token_prefix
    assert credential.reveal_secret() == body["credentials"]["secret"]
    entry = audit("app.create")
    assert entry.target == app.public_id and entry.actor is None and entry.details["api_key"].startswith("test key (clacks_")
    # The new credentials work for ingest.
    answer = signed_post(app, make_batch(1), key=body["credentials"]["secret"])
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": 5}, ["name"]])
def test_creating_an_app_with_a_bad_name_is_refused(api, admin_key, org, app, body):
    response = api("POST", path(org), admin_key, data=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert App.objects.count() == 1


def test_renaming_and_disabling_an_app_are_audited_with_the_key(api, admin_key, org, app):
    response = api("PATCH", path(org, app), admin_key, data={"name": "renamed", "is_active": False})
    assert response.status_code == 200
    assert response.json()["name"] == "renamed" and response.json()["is_active"] is False
    app.refresh_from_db()
    assert app.name == "renamed" and not app.is_active
    assert audit("app.rename").details["api_key"] and audit("app.disable").details["api_key"]
    assert api("PATCH", path(org, app), admin_key, data={"is_active": True}).json()["is_active"] is True
    assert audit("app.enable").target == app.public_id


@pytest.mark.parametrize("body", [{"is_active": "no"}, {"name": None}, {"name": " "}])
def test_a_bad_update_changes_nothing(api, admin_key, org, app, body):
    assert api("PATCH", path(org, app), admin_key, data=body).status_code == 400
    app.refresh_from_db()
    assert app.name == "my-cli" and app.is_active


def test_rotating_returns_a_new_set_once_and_revoking_stops_the_old_one(api, admin_key, org, app, secret, signed_post):
    response = api("POST", path(org, app, "credentials/rotate/"), admin_key)
    assert response.status_code == 201
    issued = response.json()
    assert issued["secret"] != secret and issued["token"].startswith(issued["token_prefix"])
    assert audit("credentials.rotate").details["api_key"]
    listed = api("GET", path(org, app, "credentials/"), admin_key).json()["credentials"]
    assert [c["active"] for c in listed] == [True, True]
    assert "secret" not in listed[0] and "token" not in listed[0]

    old = next(c for c in listed if c["id"] != issued["id"])
    revoked = api("POST", path(org, app, f"credentials/{old['id']}/revoke/"), admin_key)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert audit("credentials.revoke").details["token_prefix"] == old["token_prefix"]
    assert signed_post(app, make_batch(1)).status_code == 401  # the old secret
    assert signed_post(app, make_batch(1), key=issued["secret"]).status_code == 200


def test_revoking_another_apps_credential_is_a_404(api, admin_key, org, app):
    from tests.factories import make_app

    other, _ = make_app(org, name="other")
    credential = Credential.objects.get(app=other)
    assert api("POST", path(org, app, f"credentials/{credential.pk}/revoke/"), admin_key).status_code == 404
    credential.refresh_from_db()
    assert credential.is_active


@pytest.mark.parametrize(
    ("body", "override", "days"),
    [({"days": 30}, True, 30), ({"days": None}, True, None), ({"inherit": True}, False, None), ({"inherit": False, "days": 400}, True, 400)],
)  # fmt: skip
def test_setting_retention(api, admin_key, org, app, body, override, days):
    if not override:
        api("PUT", path(org, app, "retention-policy/"), admin_key, data={"days": 7})
    response = api("PUT", path(org, app, "retention-policy/"), admin_key, data=body)
    assert response.status_code == 200
    app.refresh_from_db()
    assert (app.retention_override, app.retention_days) == (override, days)
    assert response.json()["effective_days"] == app.effective_retention_days
    assert audit("retention.app").details["api_key"]


@pytest.mark.parametrize("body", [{}, {"days": 0}, {"days": 36501}, {"days": "30"}, {"days": True}, {"inherit": "yes"}])
def test_bad_retention_is_refused(api, admin_key, org, app, body):
    assert api("PUT", path(org, app, "retention-policy/"), admin_key, data=body).status_code == 400
    app.refresh_from_db()
    assert not app.retention_override


def test_the_export_streams_the_events_and_is_audited(api, make_key, org, app, signed_post):
    signed_post(app, make_batch(3))
    response = api("GET", path(org, app, "export/") + "?format=jsonl", make_key("export"))
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).splitlines()
    assert len(lines) == 3
    entry = audit("events.export")
    assert entry.details["via"] == "api" and entry.details["api_key"]
    csv = api("GET", path(org, app, "export/") + "?format=csv&from=2000-01-01", make_key("export"))
    assert len(b"".join(csv.streaming_content).splitlines()) == 4




def test_every_admin_call_is_audited_even_when_it_changes_nothing(api, admin_key, org, app):
    before = AuditEntry.objects.count()
    assert api("GET", path(org, app, "credentials/"), admin_key).status_code == 200
    assert api("PATCH", path(org, app), admin_key, data={"name": app.name}).status_code == 200  # unchanged
    assert api("PUT", path(org, app, "retention-policy/"), admin_key, data={"days": 0}).status_code == 400
    entries = list(AuditEntry.objects.order_by("pk")[before:])
    assert [(e.action, e.details["method"], e.details["status"]) for e in entries] == [
        ("api.admin_call", "GET", 200), ("api.admin_call", "PATCH", 200), ("api.admin_call", "PUT", 400),
    ]  # fmt: skip
    assert all(e.details["api_key"].startswith("test key") for e in entries)
    # A change records itself once, not twice.
    api("PATCH", path(org, app), admin_key, data={"name": "renamed"})
    assert [e.action for e in AuditEntry.objects.order_by("pk")[before + 3 :]] == ["app.rename"]
    # Reads with the read scope are not audited.
    api("GET", path(org, app), admin_key)
    assert AuditEntry.objects.count() == before + 4
