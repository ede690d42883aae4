"""Single sign-on in the browser: an owner adds an email domain, then people sign in by
clicking the button and going through the local OpenID provider (tests/oidc_provider)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from organizations.models import Membership, Role
from tests.browser.conftest import open_account_menu, path_of, shoot
from tests.factories import PASSWORD, make_org, make_user
from tests.oidc_provider.fixture import oidc_provider, sso_on  # noqa: F401 (fixtures)
from tests.oidc_provider.setup_provider import PASSWORD as PROVIDER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def through_the_provider(page: Page, username: str, *, allow: bool = True, known: bool = False) -> None:
    """From Clacks' sign-in page: click the button, sign in at the provider (unless this
    browser is `known` there already), then allow or decline."""
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    if not known:
        expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PROVIDER_PASSWORD)
        page.get_by_role("button", name="Sign in to the provider").click()
    expect(page.get_by_role("heading", name="Request for Permission")).to_be_visible()
    page.get_by_role("button", name="Authorize" if allow else "Decline").click()


def test_people_sign_in_through_their_identity_provider(open_page, live_server, sso_on):
    sso_on.add_redirect_uri(f"{live_server.url}/accounts/oidc/callback/")
    alice = make_user("alice")
    org = make_org(name="Acme", owner=alice)

    # The owner says that people at acme.test join as admins.
    page = open_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"/orgs/{org.public_id}/settings/")
    page.get_by_role("link", name="Email domains (0)").click()
    page.get_by_label("Email domain").fill("acme.test")
    page.get_by_label("Role").select_option("admin")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_text("People with a verified @acme.test address now join as admin.")).to_be_visible()
    shoot(page, "sso-domains")

    # Ada's first sign-in creates her account and she lands in Acme as an admin.
    page = open_page()
    page.goto("/accounts/login/")
    shoot(page, "sso-sign-in")
    through_the_provider(page, "ada")
    expect(page.get_by_text("You joined Acme as admin (your email domain).")).to_be_visible()
    assert path_of(page) == f"/orgs/{org.public_id}/"
    expect(page.locator("details.account-menu > summary")).to_have_text("ada")
    assert Membership.objects.get(organization=org, user__username="ada").role == Role.ADMIN
    shoot(page, "sso-signed-in")

    # Signing out of Clacks and in again (still signed in at the provider) reaches the same account.
    open_account_menu(page)
    page.get_by_role("button", name="Sign out").click()
    through_the_provider(page, "ada", known=True)
    expect(page.locator("details.account-menu > summary")).to_have_text("ada")
    assert Membership.objects.filter(user__username__startswith="ada").count() == 1


def test_declining_at_the_provider_is_explained_on_the_sign_in_page(open_page, live_server, sso_on):
    sso_on.add_redirect_uri(f"{live_server.url}/accounts/oidc/callback/")
    make_user("alice")
    page = open_page()

    through_the_provider(page, "grace", allow=False)

    assert path_of(page) == "/accounts/login/"
    expect(page.get_by_text("The sign-in was declined at the identity provider")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).to_have_count(0)
    shoot(page, "sso-declined")
