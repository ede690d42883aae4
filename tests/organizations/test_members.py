"""Members: invitations by link (with expiry), accepting them, roles, removal, the last-owner rule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from organizations import services
from organizations.models import AuditEntry, Invitation, Membership, Role
from tests.factories import make_member, make_user


def invite(org, *, role=Role.VIEWER, by=None, **kwargs) -> Invitation:
    return services.invite_member(org, role=role, by=by, **kwargs)


def test_every_member_sees_the_member_list_but_only_owners_see_invitations(login, alice, bob, org):
    invite(org, by=alice)
    owner_page = login(alice).get(f"/orgs/{org.public_id}/members/")
    assert owner_page.status_code == 200
    assert b"/invite/" in owner_page.content
    assert b"Create invitation link" in owner_page.content

    viewer_page = login(bob).get(f"/orgs/{org.public_id}/members/")
    assert viewer_page.status_code == 200
    assert b"alice" in viewer_page.content
    assert b"/invite/" not in viewer_page.content
    assert b"Create invitation link" not in viewer_page.content


def test_alice_creates_an_invitation_link_valid_for_seven_days(login, alice, org):
    client = login(alice)
    response = client.post(f"/orgs/{org.public_id}/members/invite/", {"role": "admin", "email": "", "valid_days": "7"})
    assert response.status_code == 302
    invitation = Invitation.objects.get(organization=org)
    assert invitation.role == Role.ADMIN
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    page = client.get(response.url)
    assert f"http://testserver/invite/{invitation.token}/".encode() in page.content
    assert b"Copy link" in page.content
    assert AuditEntry.objects.filter(organization=org, action="invitation.create").exists()


def test_an_invitation_form_error_is_a_message(login, alice, org):
    response = login(alice).post(
        f"/orgs/{org.public_id}/members/invite/", {"role": "emperor", "valid_days": "99"}, follow=True
    )
    assert b"Select a valid choice" in response.content
    assert not Invitation.objects.exists()


def test_viewers_and_admins_cannot_invite(login, bob, org):
    client = login(bob)
    assert client.post(f"/orgs/{org.public_id}/members/invite/", {"role": "owner", "valid_days": "7"}).status_code == 403
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)
    assert client.post(f"/orgs/{org.public_id}/members/invite/", {"role": "owner", "valid_days": "7"}).status_code == 403
    assert not Invitation.objects.exists()


def test_a_new_person_signs_up_through_an_invitation(client, alice, org):
    invitation = invite(org, role=Role.VIEWER, by=alice)
    page = client.get(f"/invite/{invitation.token}/")
    assert page.status_code == 200
    assert b"Join Alice Org" in page.content
    response = client.post(
        f"/invite/{invitation.token}/",
        {"username": "dora", "password1": "a-long-test-password-1", "password2": "a-long-test-password-1"},
    )
    assert response.url == f"/orgs/{org.public_id}/"  # a viewer lands on the analytics
    dora = get_user_model().objects.get(username="dora")
    assert Membership.objects.get(organization=org, user=dora).role == Role.VIEWER
    assert not dora.is_staff
    invitation.refresh_from_db()
    assert invitation.accepted_by == dora
    actions = set(AuditEntry.objects.filter(organization=org).values_list("action", flat=True))
    assert {"invitation.accept", "member.add"} <= actions


def test_a_signed_in_user_joins_with_one_click(login, charlie, alice, org):
    invitation = invite(org, role=Role.ADMIN, by=alice)
    client = login(charlie)
    assert b"Join Alice Org" in client.get(f"/invite/{invitation.token}/").content
    client.post(f"/invite/{invitation.token}/")
    assert Membership.objects.get(organization=org, user=charlie).role == Role.ADMIN


def test_an_invitation_works_once(login, charlie, alice, org):
    invitation = invite(org, by=alice)
    login(charlie).post(f"/invite/{invitation.token}/")
    dora = make_user("dora")
    client = login(dora)
    assert client.get(f"/invite/{invitation.token}/").status_code == 410
    assert client.post(f"/invite/{invitation.token}/").status_code == 410
    assert not Membership.objects.filter(user=dora).exists()


def test_an_expired_invitation_is_refused_with_a_readable_page(login, charlie, alice, org):
    invitation = invite(org, by=alice, now=timezone.now() - timedelta(days=8))
    client = login(charlie)
    page = client.get(f"/invite/{invitation.token}/")
    assert page.status_code == 410
    assert b"It expired" in page.content
    assert client.post(f"/invite/{invitation.token}/").status_code == 410
    assert not Membership.objects.filter(user=charlie).exists()


def test_an_invitation_that_expires_between_page_and_click_is_refused(charlie, alice, org):
    invitation = invite(org, by=alice)
    with pytest.raises(services.InvitationUnusable):
        services.accept_invitation(invitation, user=charlie, now=invitation.expires_at + timedelta(seconds=1))


def test_an_unknown_invitation_token_is_a_404(client, alice):
    response = client.get("/invite/not-a-token/")
    assert response.status_code == 404
    assert b"<h1>Not found</h1>" in response.content


def test_an_existing_member_is_told_so_and_the_invitation_stays_usable(login, bob, alice, org):
    invitation = invite(org, role=Role.OWNER, by=alice)
    client = login(bob)
    page = client.post(f"/invite/{invitation.token}/")
    assert b"You are already a member" in page.content
    assert Membership.objects.get(user=bob, organization=org).role == Role.VIEWER
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_alice_revokes_a_pending_invitation(login, alice, org):
    invitation = invite(org, by=alice)
    login(alice).post(f"/orgs/{org.public_id}/members/invitations/{invitation.pk}/revoke/")
    assert not Invitation.objects.exists()
    assert AuditEntry.objects.filter(organization=org, action="invitation.revoke").exists()


def test_alice_changes_bobs_role(login, alice, bob, org):
    membership = Membership.objects.get(user=bob)
    response = login(alice).post(f"/orgs/{org.public_id}/members/{membership.pk}/role/", {f"m{membership.pk}-role": "admin"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    entry = AuditEntry.objects.get(organization=org, action="member.role")
    assert (entry.target, entry.details) == ("bob", {"from": "viewer", "to": "admin"})


def test_the_last_owner_cannot_be_demoted(login, alice, org):
    membership = Membership.objects.get(user=alice)
    response = login(alice).post(
        f"/orgs/{org.public_id}/members/{membership.pk}/role/", {f"m{membership.pk}-role": "viewer"}, follow=True
    )
    assert b"at least one owner" in response.content
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_the_last_owner_cannot_be_removed(login, alice, org):
    membership = Membership.objects.get(user=alice)
    response = login(alice).post(f"/orgs/{org.public_id}/members/{membership.pk}/remove/", follow=True)
    assert b"at least one owner" in response.content
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_an_owner_can_step_down_when_another_owner_exists(login, alice, bob, org):
    Membership.objects.filter(user=bob).update(role=Role.OWNER)
    membership = Membership.objects.get(user=alice)
    response = login(alice).post(f"/orgs/{org.public_id}/members/{membership.pk}/role/", {f"m{membership.pk}-role": "admin"})
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    assert response.url == f"/orgs/{org.public_id}/apps/"  # no longer allowed on the members admin


def test_alice_removes_bob(login, alice, bob, org):
    membership = Membership.objects.get(user=bob)
    login(alice).post(f"/orgs/{org.public_id}/members/{membership.pk}/remove/")
    assert not Membership.objects.filter(user=bob).exists()
    assert AuditEntry.objects.get(organization=org, action="member.remove").target == "bob"


def test_members_of_another_organization_cannot_be_touched(login, alice, charlie, org):
    from tests.factories import make_org

    other = make_org(name="Charlie Corp", owner=charlie)
    dora = make_user("dora")
    foreign = make_member(other, dora, role=Role.VIEWER)
    client = login(alice)
    assert client.post(f"/orgs/{org.public_id}/members/{foreign.pk}/remove/").status_code == 404
    assert client.post(f"/orgs/{org.public_id}/members/{foreign.pk}/role/", {f"m{foreign.pk}-role": "owner"}).status_code == 404
    assert Membership.objects.get(pk=foreign.pk).role == Role.VIEWER


def test_viewers_cannot_change_roles_or_remove(login, alice, bob, org):
    alice_membership = Membership.objects.get(user=alice)
    bob_membership = Membership.objects.get(user=bob)
    client = login(bob)
    url = f"/orgs/{org.public_id}/members/{bob_membership.pk}/role/"
    assert client.post(url, {f"m{bob_membership.pk}-role": "owner"}).status_code == 403
    assert client.post(f"/orgs/{org.public_id}/members/{alice_membership.pk}/remove/").status_code == 403
    bob_membership.refresh_from_db()
    assert bob_membership.role == Role.VIEWER


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(on_postgres, alice, bob):
    import threading

    from django.db import connection

    from tests.factories import make_org

    org = make_org(name="Pair", owner=alice)
    make_member(org, bob, role=Role.OWNER)
    memberships = list(Membership.objects.filter(organization=org))
    barrier = threading.Barrier(2)
    outcomes = []

    def demote(membership):
        try:
            barrier.wait()
            services.change_role(membership, role=Role.VIEWER)
            outcomes.append("demoted")
        except services.LastOwnerError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=demote, args=(m,)) for m in memberships]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["demoted", "refused"]
    assert Membership.objects.filter(organization=org, role=Role.OWNER).count() == 1
