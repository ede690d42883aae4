"""create_app, rotate_credentials and send_test_event, as an operator runs them."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from organizations.models import App, Organization
from telemetry.models import Event


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_app_json_has_exactly_the_documented_keys(db, settings):
    settings.CLACKS_PUBLIC_URL = "https://clacks.example.com"

    result = json.loads(run("create_app", "--org", "Acme", "--app", "my-cli", "--json"))

    assert set(result) == {"org_id", "app_id", "secret", "token", "ingest_url", "endpoint"}
    app = App.objects.get(public_id=result["app_id"])
    assert result["org_id"] == app.organization.public_id == "org_acme"
    assert result["endpoint"] == "https://clacks.example.com"
    assert result["ingest_url"] == f"https://clacks.example.com/v1/ingest/org_acme/{app.public_id}"
    assert app.credentials.get().reveal_secret() == result["secret"]


def test_create_app_reuses_an_organization_by_name_or_id(db):
    first = json.loads(run("create_app", "--org", "Acme", "--app", "one", "--json"))
    by_name = json.loads(run("create_app", "--org", "Acme", "--app", "two", "--json"))
    by_id = json.loads(run("create_app", "--org", first["org_id"], "--app", "three", "--json"))

    assert first["org_id"] == by_name["org_id"] == by_id["org_id"]
    assert Organization.objects.count() == 1


def test_create_app_prints_the_credentials_as_text_by_default(db):
    text = run("create_app", "--org", "Acme", "--app", "my-cli")

    assert "secret" in text and "token" in text and "/v1/ingest/org_acme/app_" in text


def test_create_app_refuses_an_empty_name(db):
    with pytest.raises(CommandError):
        run("create_app", "--org", "Acme", "--app", "  ")


def test_rotate_credentials_keeps_the_old_set_valid(app, secret):
    text = run("rotate_credentials", app.public_id)

    assert "secret" in text
    assert app.credentials.active().count() == 2
    assert secret in [credential.reveal_secret() for credential in app.credentials.active()]


def test_rotate_credentials_names_an_unknown_app(db):
    with pytest.raises(CommandError, match="app_nope"):
        run("rotate_credentials", "app_nope")


@pytest.mark.django_db(transaction=True)
def test_send_test_event_posts_a_signed_batch_to_a_running_server(live_server, app):
    text = run("send_test_event", app.public_id, "--url", live_server.url)

    assert "accepted" in text
    event = Event.objects.get(app=app)
    assert event.event_type == "test_event"


@pytest.mark.django_db(transaction=True)
def test_send_test_event_fails_loudly_with_a_wrong_secret(live_server, app):
    with pytest.raises(CommandError, match="401"):
        run("send_test_event", app.public_id, "--url", live_server.url, "--secret", "wrong")


def test_send_test_event_says_when_the_server_is_unreachable(app):
    with pytest.raises(CommandError, match="Could not reach"):
        run("send_test_event", app.public_id, "--url", "http://127.0.0.1:9")
