"""Tenant isolation and rights for pages: every lookup goes through the user's memberships.

Anyone who is not a member gets a 404 (the organization might as well not
exist); a member whose role is too low gets a 403. What a role may do is
decided here and nowhere else: views ask for a `min_role`, templates read
`access.can_manage_apps` and `access.can_manage_members`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from organizations.models import App, Membership, Organization, Role

# Higher number, more rights; each role has every right of the roles below it.
ROLE_RANK = {Role.VIEWER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class RoleTooLow(PermissionDenied):
    """A member asked for a page their role does not allow; carries their access, so the
    403 page (organizations.views.permission_denied) keeps the organization's navigation."""

    def __init__(self, access: OrgAccess, needed: str):
        super().__init__("Your role in this organization does not allow this.")
        self.access = access
        self.needed = needed


@dataclass(frozen=True)
class OrgAccess:
    """A member's access to one organization; pages pass it to templates as `access`."""

    organization: Organization
    membership: Membership

    def at_least(self, role: str) -> bool:
        return ROLE_RANK[self.membership.role] >= ROLE_RANK[role]

    @property
    def can_manage_apps(self) -> bool:
        """Create apps, see credentials, change app settings, the audit log, export and erase."""
        return self.at_least(Role.ADMIN)

    @property
    def can_manage_members(self) -> bool:
        """Invite, change roles, remove members, and the organization's settings."""
        return self.at_least(Role.OWNER)


def get_org_access(user, org_public_id: str, *, min_role: str = Role.VIEWER) -> OrgAccess:
    """The user's access to the organization; Http404 for non-members, PermissionDenied below min_role."""
    if not getattr(user, "is_authenticated", False):
        raise Http404
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__public_id=org_public_id)
        .first()
    )
    if membership is None:
        raise Http404("No such organization.")
    access = OrgAccess(organization=membership.organization, membership=membership)
    if not access.at_least(min_role):
        raise RoleTooLow(access, min_role)
    return access


def get_app_access(user, org_public_id: str, app_public_id: str, *, min_role: str = Role.VIEWER) -> tuple[App, OrgAccess]:
    """The app inside an organization the user can see; same 404/403 rules."""
    access = get_org_access(user, org_public_id, min_role=min_role)
    app = App.objects.select_related("organization").filter(
        organization=access.organization, public_id=app_public_id
    ).first()
    if app is None:
        raise Http404("No such application.")
    return app, access
