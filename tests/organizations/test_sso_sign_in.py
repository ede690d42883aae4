"""Single sign-on end to end through a real OpenID provider (tests/oidc_provider) on 127.0.0.1."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from organizations import oidc
from organizations.models import AuditEntry, Membership, Role, SsoDomain, SsoDomainJoin, SsoIdentity
from tests.factories import PASSWORD, make_member, make_org, make_user
from tests.oidc_provider.fixture import _free_port, oidc_provider, sso_on  # noqa: F401 (fixtures)

User = get_user_model()


@pytest.fixture(autouse=True)
def _set_up(alice):
    """A user exists: before the first one, the sign-in page leads to /setup/."""


def sso_accounts():
    return User.objects.filter(sso_identities__isnull=False)


def start(client, next_url: str = "") -> str:
    """Click the button: the authorization URL Clacks sends the browser to."""
    response = client.get("/accounts/oidc/login/" + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302
    return response["Location"]


def sign_in(client, provider, username: str):
    """The whole round trip as `username`; Clacks' answer to the callback."""
    callback = provider.sign_in(start(client), username)
    return client.get(callback)


def messages_on_sign_in_page(client, response) -> str:
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page.content.decode()


# --- Signing in ------------------------------------------------------------------------------


def test_the_button_leads_to_the_providers_authorization_endpoint_with_pkce(client, sso_on):
    url = start(client)

    assert url.startswith(f"{sso_on.issuer}/authorize?")
    assert "code_challenge_method=S256" in url
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Faccounts%2Foidc%2Fcallback%2F" in url
    assert "scope=openid+email+profile" in url


def test_first_sign_in_creates_the_account(client, sso_on):
    response = sign_in(client, sso_on, "ada")

    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="ada")
    assert user.email == "ada@acme.test"
    assert not user.has_usable_password()
    identity = SsoIdentity.objects.get(user=user)
    assert identity.issuer == sso_on.issuer and identity.subject
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session["_auth_user_backend"] == "organizations.oidc.OidcBackend"


def test_second_sign_in_reuses_the_account(client, sso_on):
    sign_in(client, sso_on, "ada")
    first = User.objects.get(username="ada")
    client.post("/accounts/logout/")

    response = sign_in(client, sso_on, "ada")

    assert response.status_code == 302
    assert sso_accounts().count() == 1
    assert SsoIdentity.objects.count() == 1
    assert client.session["_auth_user_id"] == str(first.pk)


def test_next_is_kept_through_the_provider(client, sso_on):
    callback = sso_on.sign_in(start(client, next_url="/orgs/"), "ada")

    assert client.get(callback)["Location"] == "/orgs/"


def test_a_local_account_with_the_same_name_and_email_is_not_taken_over(client, sso_on):
    local = make_user("ada")
    local.email = "ada@acme.test"
    local.save()

    sign_in(client, sso_on, "ada")

    created = sso_accounts().get()
    assert created.username == "ada-2"
    assert client.session["_auth_user_id"] == str(created.pk)
    assert not SsoIdentity.objects.filter(user=local).exists()


def test_a_deactivated_account_cannot_sign_in(client, sso_on):
    sign_in(client, sso_on, "ada")
    client.post("/accounts/logout/")
    User.objects.filter(username="ada").update(is_active=False)

    response = sign_in(client, sso_on, "ada")

    assert "Your Clacks account is deactivated" in messages_on_sign_in_page(client, response)
    assert "_auth_user_id" not in client.session


def test_passwords_still_work_beside_single_sign_on(client, sso_on, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_backend"] == "django.contrib.auth.backends.ModelBackend"


# --- Joining by email domain -----------------------------------------------------------------


def test_a_verified_address_joins_the_organization_of_its_domain_with_its_role(client, sso_on, alice):
    org = make_org(name="Acme", owner=alice)
    SsoDomain.objects.create(organization=org, domain="acme.test", role=Role.ADMIN)

    response = sign_in(client, sso_on, "ada")

    ada = User.objects.get(username="ada")
    assert Membership.objects.get(organization=org, user=ada).role == Role.ADMIN
    entry = AuditEntry.objects.get(organization=org, action="member.add")
    assert entry.target == "ada" and entry.actor == ada
    assert entry.details == {"role": "admin", "via": "single sign-on", "domain": "acme.test"}
    page = client.get(response["Location"], follow=True).content.decode()
    assert "You joined Acme as admin" in page


def test_an_unverified_address_does_not_join(client, sso_on, alice):
    org = make_org(name="Acme", owner=alice)
    SsoDomain.objects.create(organization=org, domain="acme.test", role=Role.ADMIN)

    sign_in(client, sso_on, "eve")  # eve@acme.test, email_verified false

    eve = User.objects.get(username="eve")
    assert client.session["_auth_user_id"] == str(eve.pk)
    assert not Membership.objects.filter(user=eve).exists()
    assert not SsoDomainJoin.objects.exists()
    assert not AuditEntry.objects.filter(action="member.add").exists()


def test_another_domain_does_not_join(client, sso_on, alice):
    org = make_org(name="Acme", owner=alice)
    SsoDomain.objects.create(organization=org, domain="acme.test", role=Role.VIEWER)

    sign_in(client, sso_on, "grace")  # grace@elsewhere.test

    assert not Membership.objects.filter(user__username="grace").exists()


def test_a_rule_added_later_applies_at_the_next_sign_in(client, sso_on, alice):
    sign_in(client, sso_on, "ada")
    client.post("/accounts/logout/")
    org = make_org(name="Acme", owner=alice)
    SsoDomain.objects.create(organization=org, domain="acme.test", role=Role.VIEWER)

    sign_in(client, sso_on, "ada")

    assert Membership.objects.get(organization=org, user__username="ada").role == Role.VIEWER


def test_a_removed_member_is_not_added_back(client, sso_on, alice):
    org = make_org(name="Acme", owner=alice)
    SsoDomain.objects.create(organization=org, domain="acme.test", role=Role.VIEWER)
    sign_in(client, sso_on, "ada")
    client.post("/accounts/logout/")
    Membership.objects.get(organization=org, user__username="ada").delete()

    sign_in(client, sso_on, "ada")

    assert not Membership.objects.filter(organization=org, user__username="ada").exists()


def test_an_existing_members_role_is_left_alone(client, sso_on, alice):
    sign_in(client, sso_on, "ada")
    client.post("/accounts/logout/")
    ada = User.objects.get(username="ada")
    org = make_org(name="Acme", owner=alice)
    make_member(org, ada, role=Role.OWNER)
    SsoDomain.objects.create(organization=org, domain="acme.test", role=Role.VIEWER)

    sign_in(client, sso_on, "ada")

    assert Membership.objects.get(organization=org, user=ada).role == Role.OWNER


# --- Errors from the provider: a message on the sign-in page, never a 500 ---------------------


def test_declining_at_the_provider_shows_why_on_the_sign_in_page(client, sso_on):
    callback = sso_on.sign_in(start(client), "ada", allow=False)
    assert "error=access_denied" in callback

    page = messages_on_sign_in_page(client, client.get(callback))

    assert "The sign-in was declined at the identity provider" in page
    assert not sso_accounts().exists()


def test_an_answer_with_another_state_is_refused(client, sso_on):
    callback = sso_on.sign_in(start(client), "ada")
    forged = callback.replace("state=", "state=x")

    page = messages_on_sign_in_page(client, client.get(forged))

    assert "not started in this browser or was already used" in page
    assert not sso_accounts().exists()


def test_an_answer_opened_in_another_browser_is_refused(client, sso_on):
    callback = sso_on.sign_in(start(client), "ada")
    other = Client()

    page = messages_on_sign_in_page(other, other.get(callback))

    assert "not started in this browser" in page
    assert not sso_accounts().exists()


def test_the_same_answer_works_once(client, sso_on):
    callback = sso_on.sign_in(start(client), "ada")
    client.get(callback)
    client.post("/accounts/logout/")

    page = messages_on_sign_in_page(client, client.get(callback))

    assert "already used" in page


def test_an_unknown_error_code_is_named_but_its_description_is_not_shown(client, sso_on):
    start(client)
    state = next(iter(client.session["oidc_states"]))

    response = client.get(
        "/accounts/oidc/callback/",
        {"state": state, "error": "invalid_scope", "error_description": "Call +1 555 0100 for help"},
    )

    page = messages_on_sign_in_page(client, response)
    assert "error invalid_scope" in page
    assert "555" not in page


def test_a_provider_that_is_down_shows_a_message_when_the_button_is_clicked(client, settings, sso_on):
    settings.OIDC_ISSUER = f"http://127.0.0.1:{_free_port()}/openid"  # nothing listens there

    response = client.get("/accounts/oidc/login/?next=/orgs/")

    assert response["Location"] == "/accounts/login/?next=%2Forgs%2F"
    assert "cannot be reached right now" in messages_on_sign_in_page(client, response)


def test_a_provider_that_goes_down_before_the_answer_shows_a_message(client, sso_on):
    callback = sso_on.sign_in(start(client), "ada")
    config = oidc.provider_config()
    dead = f"http://127.0.0.1:{_free_port()}"
    cache.set(
        oidc._discovery_cache_key(sso_on.issuer),
        {**config.__dict__, "token_endpoint": f"{dead}/token"},
        60,
    )

    page = messages_on_sign_in_page(client, client.get(callback))

    assert "cannot be reached right now" in page
    assert not sso_accounts().exists()


def test_a_wrong_client_secret_shows_a_message(client, settings, sso_on):
    callback = sso_on.sign_in(start(client), "ada")
    settings.OIDC_CLIENT_SECRET = "not-the-secret"

    page = messages_on_sign_in_page(client, client.get(callback))

    assert "did not complete the sign-in" in page
    assert not sso_accounts().exists()


def test_a_provider_naming_another_issuer_is_refused(client, settings, sso_on):
    # The same provider by another name: its document names the issuer at 127.0.0.1.
    settings.OIDC_ISSUER = sso_on.issuer.replace("127.0.0.1", "localhost")

    page = messages_on_sign_in_page(client, client.get("/accounts/oidc/login/"))

    assert "misconfigured" in page


# --- Off when not configured -------------------------------------------------------------------


def test_without_configuration_there_is_no_button_and_no_route(client, alice):
    page = client.get("/accounts/login/").content.decode()

    assert "accounts/oidc" not in page
    assert client.get("/accounts/oidc/login/").status_code == 404
    assert client.get("/accounts/oidc/callback/?code=x&state=y").status_code == 404


def test_the_button_shows_its_label_and_nothing_is_fetched_until_it_is_clicked(client, settings, alice):
    settings.OIDC_ISSUER = f"http://127.0.0.1:{_free_port()}/openid"  # nothing listens there
    settings.OIDC_CLIENT_ID = "clacks"
    settings.OIDC_CLIENT_SECRET = "secret"
    settings.OIDC_BUTTON_LABEL = "Sign in with Acme ID"

    page = client.get("/accounts/login/?next=/orgs/")

    assert page.status_code == 200
    assert 'href="/accounts/oidc/login/?next=/orgs/"' in page.content.decode()
    assert "Sign in with Acme ID" in page.content.decode()
