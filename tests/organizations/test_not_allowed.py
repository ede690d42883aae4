"""A viewer's landing page, and the "Not allowed" page inside an organization."""

from __future__ import annotations

from organizations import services
from organizations.models import Role
from tests.factories import make_member, make_user


def test_a_viewer_gets_not_allowed_with_the_navigation_and_the_owners_to_ask(login, bob, org, app):
    carol = make_user("carol", first_name="Carol", last_name="Owner")
    make_member(org, carol, role=Role.OWNER)

    response = login(bob).get(f"/orgs/{org.public_id}/apps/{app.public_id}/settings/")

    body = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Not allowed</h1>" in body
    assert 'aria-label="Organization Alice Org"' in body  # the organization's menu is still there
    assert "You are a viewer in Alice Org; this page needs an admin or more." in body
    assert "ask an owner:\n        <strong>alice, Carol Owner</strong>" in body


def test_outside_an_organization_the_page_stays_general(rf, alice):
    from django.core.exceptions import PermissionDenied

    from organizations.views import permission_denied

    request = rf.get("/")
    request.user = alice
    request.session = {}
    response = permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert b"Ask an owner of the organization" in response.content


def test_an_admin_who_joins_lands_on_the_apps(client, alice, org):
    invitation = services.invite_member(org, role=Role.ADMIN, by=alice)
    response = client.post(
        f"/invite/{invitation.token}/",
        {"username": "dora", "password1": "a-long-test-password-1", "password2": "a-long-test-password-1"},
    )
    assert response.url == f"/orgs/{org.public_id}/apps/"


def test_signing_in_as_a_viewer_lands_on_the_organizations_analytics(client, bob, org):
    from tests.factories import PASSWORD

    response = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == f"/orgs/{org.public_id}/"
    assert response.status_code == 200
