"""API keys: bearer authentication, scopes, tenant isolation, expiry, revocation,
last use, rate limits, the error shape, and the dashboard page that manages them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from api import keys
from api.models import ApiKey
from organizations.models import AuditEntry, Role
from tests.factories import make_app, make_org


def orgs_path(org) -> str:
    return f"/api/v1/orgs/{org.public_id}/"


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) <= {"error", "retry_after"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def test_a_request_without_a_key_gets_401_naming_the_bearer_scheme(api, org):
    response = api("GET", "/api/v1/orgs/")
    assert_error(response, 401, "missing_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer clacks_not-a-key", "Bearer ", "Basic YWxpY2U6cHc=", "clacks_x"])
def test_an_unknown_key_or_another_scheme_gets_401(client, org, header):
    assert_error(client.get("/api/v1/orgs/", HTTP_AUTHORIZATION=header), 401, "invalid_api_key")


def test_a_key_lists_its_own_organization_only(api, make_key, org, charlie):
    make_org(name="Charlie Org", owner=charlie)
    response = api("GET", "/api/v1/orgs/", make_key("read"))
    assert response.status_code == 200
    assert [o["id"] for o in response.json()["organizations"]] == [org.public_id]


def test_a_key_cannot_see_another_organization_or_its_apps(api, make_key, org, app, charlie):
    other = make_org(name="Charlie Org", owner=charlie)
    other_app, _ = make_app(other, name="secret-tool")
    token = make_key()
    assert_error(api("GET", orgs_path(other), token), 404, "not_found")
    assert_error(api("GET", orgs_path(other) + "apps/", token), 404, "not_found")
    assert_error(api("GET", f"{orgs_path(other)}apps/{other_app.public_id}/summary/", token), 404, "not_found")
    # Nor through its own organization's path with the other's app id.
    assert_error(api("GET", f"{orgs_path(org)}apps/{other_app.public_id}/", token), 404, "not_found")
    assert_error(api("PATCH", f"{orgs_path(org)}apps/{other_app.public_id}/", token, data={"name": "x"}), 404, "not_found")
    other_app.refresh_from_db()
    assert other_app.name == "secret-tool"


@pytest.mark.parametrize(
    ("scope", "method", "suffix", "allowed"),
    [
        ("read", "GET", "summary/", True),
        ("events", "GET", "summary/", False),
        ("events", "GET", "events/", True),
        ("read", "GET", "events/", False),
        ("export", "GET", "export/", True),
        ("read", "GET", "export/", False),
        ("read", "GET", "credentials/", False),
        ("admin", "GET", "credentials/", True),
        ("read", "POST", "credentials/rotate/", False),
        ("read", "PATCH", "", False),
        ("admin", "GET", "", False),
    ],
)  # fmt: skip
def test_each_endpoint_needs_its_scope(api, make_key, org, app, scope, method, suffix, allowed):
    response = api(method, f"{orgs_path(org)}apps/{app.public_id}/{suffix}", make_key(scope), data={} if method != "GET" else None)
    if allowed:
        assert response.status_code == 200
    else:
        assert_error(response, 403, "insufficient_scope")


def test_keys_are_stored_as_a_hash_and_shown_once(org, alice):
    issued = keys.create_key(org, name="ci", scopes=["read"], by=alice)
    key = ApiKey.objects.get()
    assert issued.token.startswith("clacks_") and len(issued.token) > 40
    assert key.token_hash == keys.hash_key(issued.token) and issued.token not in key.token_hash
    assert issued.token.startswith(key.prefix) and len(key.prefix) < 20
    for field in ApiKey._meta.concrete_fields:
        assert getattr(key, field.attname) != issued.token


def test_an_expired_key_and_a_revoked_key_get_401(api, org, alice):
    expired = keys.create_key(org, name="old", scopes=["read"], by=alice, expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.filter(pk=expired.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(api("GET", "/api/v1/orgs/", expired.token), 401, "invalid_api_key")

    revoked = keys.create_key(org, name="gone", scopes=["read"], by=alice)
    assert api("GET", "/api/v1/orgs/", revoked.token).status_code == 200
    assert keys.revoke_key(revoked.key, by=alice) is True
    assert keys.revoke_key(revoked.key, by=alice) is False
    assert_error(api("GET", "/api/v1/orgs/", revoked.token), 401, "invalid_api_key")


def test_last_used_is_recorded_at_most_once_a_minute(api, make_key, org):
    token = make_key("read")
    key = ApiKey.objects.get()
    assert key.last_used_at is None
    api("GET", "/api/v1/orgs/", token)
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    api("GET", "/api/v1/orgs/", token)
    key.refresh_from_db()
    assert key.last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(seconds=61))
    api("GET", "/api/v1/orgs/", token)
    key.refresh_from_db()
    assert key.last_used_at > first


def test_a_key_past_its_rate_gets_429_with_retry_after(api, make_key, org, settings):
    settings.CLACKS_API_REQUESTS_PER_MINUTE = 3
    token, other = make_key("read"), make_key("read")
    answers = [api("GET", "/api/v1/orgs/", token) for _ in range(4)]
    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    assert answers[2]["X-RateLimit-Remaining"] == "0"
    body = assert_error(answers[3], 429, "rate_limit_exceeded")
    assert 1 <= body["retry_after"] <= 60
    assert answers[3]["Retry-After"] == str(body["retry_after"])
    # Per key: another key of the same organization is not held back.
    assert api("GET", "/api/v1/orgs/", other).status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/nothing-here/", 404, "not_found"),
        ("{org}apps/app_nope/", 404, "not_found"),
        ("{org}apps/{app}/events/not-a-uuid/", 404, "not_found"),
        ("{org}apps/{app}/summary/?range=custom&start=2026-01-02&end=2026-01-01", 400, "invalid_range"),
        ("{org}apps/{app}/summary/?range=forever", 400, "invalid_range"),
        ("{org}apps/{app}/summary/?ci=maybe", 400, "invalid_request"),
        ("{org}apps/{app}/events/?before=xyz", 400, "invalid_cursor"),
        ("{org}apps/{app}/events/?limit=0", 400, "invalid_request"),
        ("{org}apps/{app}/events/?since=yesterday", 400, "invalid_request"),
        ("{org}apps/{app}/export/?from=2026-13-01", 400, "invalid_range"),
        ("{org}apps/{app}/export/?format=xml", 400, "invalid_request"),
        ("{org}apps/{app}/releases/?behind=-1", 400, "invalid_request"),
        ("{org}apps/{app}/health/command/", 400, "invalid_request"),
        ("{org}apps/{app}/funnels/999/", 404, "not_found"),
    ],
)  # fmt: skip
def test_bad_requests_get_the_one_error_shape(api, make_key, org, app, path, status, code):
    path = path.format(org=orgs_path(org), app=app.public_id)
    assert_error(api("GET", path, make_key()), status, code)


def test_a_method_an_endpoint_does_not_have_gets_405_in_the_error_shape(api, make_key, org):
    assert_error(api("DELETE", orgs_path(org), make_key()), 405, "method_not_allowed")


def test_malformed_json_gets_400(client, make_key, org):
    response = client.generic("POST", orgs_path(org) + "apps/", b"{nope", content_type="application/json",
                              HTTP_AUTHORIZATION=f"Bearer {make_key('admin')}")  # fmt: skip
    assert_error(response, 400, "invalid_json")


# --- The dashboard page -----------------------------------------------------------------------


def keys_page(org) -> str:
    return f"/orgs/{org.public_id}/settings/api-keys/"


def test_an_admin_creates_a_key_sees_it_once_and_it_works(client, api, org, alice, bob):
    make_member_admin = org.memberships.get(user=bob)
    make_member_admin.role = Role.ADMIN
    make_member_admin.save()
    client.force_login(bob)
    tomorrow = (timezone.now() + timedelta(days=2)).date().isoformat()
    response = client.post(keys_page(org), {"name": "CI check", "scopes": ["read", "export"], "expires_on": tomorrow})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = response.context["issued"].token
    assert token in response.content.decode()
    key = ApiKey.objects.get()
    assert key.scopes == ["read", "export"] and key.created_by == bob and key.expires_at is not None
    entry = AuditEntry.objects.get(action="api_key.create")
    assert entry.actor == bob and entry.details["scopes"] == ["read", "export"] and token not in str(entry.details)
    # Shown once: the page never shows it again.
    assert token not in client.get(keys_page(org)).content.decode()
    assert api("GET", "/api/v1/orgs/", token).status_code == 200


def test_the_page_refuses_bad_input_with_a_message(client, org, alice):
    client.force_login(alice)
    response = client.post(keys_page(org), {"name": "", "scopes": [], "expires_on": "2000-01-01"})
    assert response.status_code == 400
    form = response.context["form"]
    assert {"name", "scopes", "expires_on"} <= set(form.errors)
    assert not ApiKey.objects.exists()


def test_revoking_on_the_page_stops_the_key_and_is_audited(client, api, make_key, org, alice):
    token = make_key("read")
    key = ApiKey.objects.get()
    client.force_login(alice)
    response = client.post(f"{keys_page(org)}{key.pk}/revoke/")
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="api_key.revoke", target=key.prefix, actor=alice).exists()
    assert_error(api("GET", "/api/v1/orgs/", token), 401, "invalid_api_key")
    assert "revoked" in client.get(keys_page(org)).content.decode()


def test_viewers_and_outsiders_cannot_manage_keys(client, make_key, org, bob, charlie):
    make_key("read")
    key = ApiKey.objects.get()
    client.force_login(bob)  # a viewer
    assert client.get(keys_page(org)).status_code == 403
    assert client.post(f"{keys_page(org)}{key.pk}/revoke/").status_code == 403
    client.force_login(charlie)
    assert client.get(keys_page(org)).status_code == 404
    assert client.post(f"{keys_page(org)}{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_an_admin_of_another_organization_cannot_revoke_this_ones_keys(client, make_key, org, charlie):
    make_key("read")
    key = ApiKey.objects.get()
    theirs = make_org(name="Charlie Org", owner=charlie)
    client.force_login(charlie)
    assert client.post(f"/orgs/{theirs.public_id}/settings/api-keys/{key.pk}/revoke/").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_organization_menu_links_to_the_keys_page_for_admins(client, org, alice, bob):
    client.force_login(alice)
    assert keys_page(org) in client.get(f"/orgs/{org.public_id}/apps/").content.decode()
    client.force_login(bob)
    assert keys_page(org) not in client.get(f"/orgs/{org.public_id}/apps/").content.decode()



@pytest.mark.parametrize("app_id", ["%00", "a%00b", "x" * 300, "%F0%9F%92%A5"])
def test_app_ids_no_app_could_have_are_a_404(api, make_key, org, app_id):
    assert_error(api("GET", f"{orgs_path(org)}apps/{app_id}/summary/", make_key()), 404, "not_found")


@pytest.mark.parametrize("suffix", ["funnels/99999999999999999999/", "funnels/0/"])
def test_numbers_no_row_could_have_are_a_404(api, make_key, org, app, suffix):
    assert_error(api("GET", f"{orgs_path(org)}apps/{app.public_id}/{suffix}", make_key()), 404, "not_found")


def test_a_credential_number_no_row_could_have_is_a_404(api, make_key, org, app):
    path = f"{orgs_path(org)}apps/{app.public_id}/credentials/99999999999999999999/revoke/"
    assert_error(api("POST", path, make_key("admin")), 404, "not_found")


@pytest.mark.parametrize(
    "query",
    ["properties/?type=%00", "properties/?type=command_execution&key=a%00&split=%00", "health/command/?command=a%00b",
     "events/?type=%00", "events/?session=x%00", "summary/?version=%00&os=%00", "releases/?version=%00"],
)  # fmt: skip
def test_a_nul_in_a_query_never_reaches_the_database_as_an_error(api, make_key, org, seeded, query):
    response = api("GET", f"{orgs_path(org)}apps/{seeded.public_id}/{query}", make_key())
    assert response.status_code in (200, 400), response.content
