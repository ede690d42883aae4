"""organizations.access: the one place a role's rights are derived."""

from __future__ import annotations

import pytest

from organizations.access import get_org_access
from organizations.models import Membership, Role


@pytest.mark.parametrize(
    "role, apps, members",
    [(Role.VIEWER, False, False), (Role.ADMIN, True, False), (Role.OWNER, True, True)],
)
def test_each_role_has_the_rights_of_the_roles_below_it(bob, org, role, apps, members):
    Membership.objects.filter(user=bob, organization=org).update(role=role)

    access = get_org_access(bob, org.public_id)

    assert (access.can_manage_apps, access.can_manage_members) == (apps, members)
    assert access.can_manage_apps == access.at_least(Role.ADMIN)
    assert access.can_manage_members == access.at_least(Role.OWNER)


def test_an_admin_sees_the_admin_links_but_not_the_owner_ones(login, bob, org, app):
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)

    page = login(bob).get(f"/orgs/{org.public_id}/apps/").content.decode()

    assert f"/orgs/{org.public_id}/audit/" in page and "/credentials/" in page
    assert f'href="/orgs/{org.public_id}/settings/"' not in page
