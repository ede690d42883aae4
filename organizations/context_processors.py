"""Navigation context for every page: the organizations in the switcher, and which one was used last.

Rights and the current organization come from the page's own `access`
(organizations.access.OrgAccess), which the view looked up already; nothing
here derives them again.
"""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from organizations.models import Membership

LAST_ORG_SESSION_KEY = "clacks_last_org"


def _memberships(user) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("organization").order_by("organization__name"))


def remember_last_org(request, org_public_id: str | None) -> None:
    """Keep the organization of this page in the session, so "/" can return to it.

    Writes (and checks the membership with one query) only when the page is of
    another organization than the one remembered: moving around inside one
    organization costs nothing."""
    if not org_public_id or request.session.get(LAST_ORG_SESSION_KEY) == org_public_id:
        return
    if Membership.objects.filter(user=request.user, organization__public_id=org_public_id).exists():
        request.session[LAST_ORG_SESSION_KEY] = org_public_id


def navigation(request) -> dict:
    """`nav_memberships`: the user's memberships with their organizations, read
    only if the page shows them (the organization switcher)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    remember_last_org(request, match.kwargs.get("org_id") if match is not None else None)
    return {"nav_memberships": SimpleLazyObject(lambda: _memberships(user))}
