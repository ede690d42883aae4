"""The organization list, creating one, and the organization's settings and default retention."""

from __future__ import annotations

from datetime import timedelta

from organizations.models import AuditEntry, Membership, Organization, Role, Tier
from tests.factories import make_app, make_batch, make_member, make_org


def test_the_list_shows_only_my_organizations(login, alice, charlie, org):
    make_org(name="Charlie Corp", owner=charlie)
    page = login(alice).get("/orgs/")
    assert page.status_code == 200
    assert b"Alice Org" in page.content
    assert b"Charlie Corp" not in page.content


def test_a_user_without_organizations_gets_an_empty_state(login, charlie):
    page = login(charlie).get("/orgs/")
    assert b"You do not belong to any organization yet" in page.content


def test_creating_an_organization_makes_me_its_owner(login, charlie):
    response = login(charlie).post("/orgs/", {"name": "Charlie Corp"})
    org = Organization.objects.get(name="Charlie Corp")
    assert response.url == f"/orgs/{org.public_id}/apps/new/"
    assert Membership.objects.get(organization=org, user=charlie).role == Role.OWNER
    assert AuditEntry.objects.filter(organization=org, action="organization.create").exists()


def test_an_organization_needs_a_name(login, charlie):
    response = login(charlie).post("/orgs/", {"name": "   "})
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not Organization.objects.exists()


def test_the_org_list_needs_sign_in(client, alice):
    assert client.get("/orgs/").url.startswith("/accounts/login/")


def test_alice_renames_her_organization_and_sets_its_tier(login, alice, org):
    client = login(alice)
    assert client.get(f"/orgs/{org.public_id}/settings/").status_code == 200
    response = client.post(
        f"/orgs/{org.public_id}/settings/", {"name": "Alice Labs", "tier": Tier.PRO}
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.name, org.tier, org.is_active) == ("Alice Labs", Tier.PRO, True)
    entry = AuditEntry.objects.get(organization=org, action="organization.update")
    assert entry.details == {"name": {"from": "Alice Org", "to": "Alice Labs"}, "tier": {"from": "self_hosted", "to": "pro"}}


def test_an_invalid_tier_is_a_form_error_not_a_500(login, alice, org):
    response = login(alice).post(f"/orgs/{org.public_id}/settings/", {"name": "x", "tier": "platinum"})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content


def test_disabling_the_organization_refuses_ingest_at_once(login, alice, org, app, signed_post):
    assert signed_post(app, make_batch(1)).status_code == 200  # the app is now in the ingest cache
    client = login(alice)
    # The rename form no longer disables: that has its own confirmation page.
    client.post(f"/orgs/{org.public_id}/settings/", {"name": org.name, "tier": org.tier})
    org.refresh_from_db()
    assert org.is_active is True
    confirmation = client.get(f"/orgs/{org.public_id}/settings/state/").content.decode()
    assert "Ingest refuses every one of its 1 app at once" in confirmation
    client.post(f"/orgs/{org.public_id}/settings/state/", {"is_active": ""})
    org.refresh_from_db()
    assert org.is_active is False
    refused = signed_post(app, make_batch(1))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "app_disabled"


def test_admins_and_viewers_cannot_change_the_organization(login, org, bob):
    client = login(bob)
    assert client.get(f"/orgs/{org.public_id}/settings/").status_code == 403
    assert client.post(f"/orgs/{org.public_id}/settings/", {"name": "Bob's", "tier": "free"}).status_code == 403
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)
    assert client.get(f"/orgs/{org.public_id}/settings/").status_code == 403
    org.refresh_from_db()
    assert org.name == "Alice Org"


def test_the_default_retention_preview_counts_without_saving(login, alice, org, app, events):
    events(app, 3, age=timedelta(days=40))
    events(app, 2, age=timedelta(days=10))
    own = make_app(org, name="own-retention")[0]
    own.retention_override, own.retention_days = True, None
    own.save()
    events(own, 4, age=timedelta(days=40))  # follows its own setting: not counted

    response = login(alice).post(f"/orgs/{org.public_id}/settings/retention/", {"choice": "30", "preview": "1"})
    assert response.status_code == 200
    assert b"Saving this would delete <strong>3</strong> events" in response.content
    org.refresh_from_db()
    assert org.retention_days == 90


def test_saving_the_default_retention_is_audited(login, alice, org):
    client = login(alice)
    response = client.post(f"/orgs/{org.public_id}/settings/retention/", {"choice": "custom", "custom_days": "45"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.retention_days == 45
    entry = AuditEntry.objects.get(organization=org, action="retention.organization")
    assert entry.details == {"from": 90, "to": 45}
    client.post(f"/orgs/{org.public_id}/settings/retention/", {"choice": "forever"})
    org.refresh_from_db()
    assert org.retention_days is None


def test_a_custom_retention_needs_a_number_of_days(login, alice, org):
    response = login(alice).post(f"/orgs/{org.public_id}/settings/retention/", {"choice": "custom", "custom_days": ""})
    assert response.status_code == 400
    assert b"Enter a number of days" in response.content
    bad = login(alice).post(f"/orgs/{org.public_id}/settings/retention/", {"choice": "custom", "custom_days": "-3"})
    assert bad.status_code == 400
    assert b"Ensure this value is greater than or equal to 1." in bad.content
    org.refresh_from_db()
    assert org.retention_days == 90


def test_the_settings_page_shows_when_retention_last_ran(login, alice, org, app):
    from django.utils import timezone

    app.retention_last_run_at = timezone.now()
    app.save()
    page = login(alice).get(f"/orgs/{org.public_id}/settings/")
    assert b"Retention last ran" in page.content
    assert b"<time datetime=" in page.content


def test_a_user_in_two_organizations_sees_both_in_the_switcher(login, alice, org, charlie):
    other = make_org(name="Second Org", owner=charlie)
    make_member(other, alice, role=Role.VIEWER)
    page = login(alice).get(f"/orgs/{org.public_id}/apps/")
    assert page.content.count(b'class="switcher"') == 1
    assert f'href="/orgs/{other.public_id}/"'.encode() in page.content
    assert f'href="/orgs/{org.public_id}/"'.encode() in page.content
