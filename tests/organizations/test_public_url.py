"""The endpoint shown and printed: CLACKS_PUBLIC_URL when set, else how the server is reached."""

from __future__ import annotations

import io
import json

from django.core.management import call_command


def credentials(app) -> str:
    return f"/orgs/{app.organization.public_id}/apps/{app.public_id}/credentials/"


def test_without_a_public_url_the_credentials_page_shows_the_address_it_was_reached_at(login, alice, app, settings):
    settings.CLACKS_PUBLIC_URL = ""
    body = login(alice).get(credentials(app), HTTP_HOST="127.0.0.1:9000").content.decode()
    assert 'export CLACKS_ENDPOINT="http://127.0.0.1:9000"' in body
    assert f"http://127.0.0.1:9000/v1/ingest/{app.organization.public_id}/{app.public_id}" in body
    assert "CLACKS_PUBLIC_URL</code> is not set" in body
    assert 'id="public-url-mismatch"' not in body


def test_a_public_url_that_differs_from_the_address_reached_is_warned_about(login, alice, app, settings):
    settings.CLACKS_PUBLIC_URL = "http://127.0.0.1:8000"
    body = login(alice).get(credentials(app), HTTP_HOST="127.0.0.1:9000").content.decode()
    assert 'export CLACKS_ENDPOINT="http://127.0.0.1:8000"' in body
    assert 'id="public-url-mismatch"' in body
    assert "this page was reached at <code class=\"break\">http://127.0.0.1:9000</code>" in body


def test_a_public_url_with_a_path_and_the_default_port_matches_its_host(login, alice, app, settings):
    settings.CLACKS_PUBLIC_URL = "https://localhost/clacks"
    body = login(alice).get(credentials(app), HTTP_HOST="localhost:443", secure=True).content.decode()
    assert 'export CLACKS_ENDPOINT="https://localhost/clacks"' in body
    assert 'id="public-url-mismatch"' not in body


def test_health_reports_the_mismatch(client, db, settings):
    settings.CLACKS_PUBLIC_URL = "https://localhost"
    body = client.get("/health", HTTP_HOST="127.0.0.1:9000").json()
    assert body["public_url"]["url"] == "https://localhost"
    assert body["public_url"]["configured"] is True
    assert "http://127.0.0.1:9000" in body["public_url"]["warning"]


def test_create_app_without_a_public_url_prints_the_port_it_is_given(db, settings):
    settings.CLACKS_PUBLIC_URL = ""
    settings.PORT = 9000
    out = io.StringIO()
    call_command("create_app", "--org", "Acme", "--app", "my-cli", "--json", stdout=out)
    assert json.loads(out.getvalue())["endpoint"] == "http://127.0.0.1:9000"
