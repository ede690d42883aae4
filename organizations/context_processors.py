"""Navigation context for every page: the user's organizations, the current one and the role there."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from organizations.models import App, Membership

LAST_ORG_SESSION_KEY = "clacks_last_org"


def _memberships(user) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("organization").order_by("organization__name"))


def navigation(request) -> dict:
    """`nav_memberships`, `current_membership` (None outside an organization's pages)
    and `current_app`, looked up from the URL's org_id/app_id and the user's memberships only.

    Also remembers the organization last visited, so the home page can return to it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    kwargs = match.kwargs if match is not None else {}
    memberships = _memberships(user)
    current = next((m for m in memberships if m.organization.public_id == kwargs.get("org_id")), None)
    if current is not None and request.session.get(LAST_ORG_SESSION_KEY) != current.organization.public_id:
        request.session[LAST_ORG_SESSION_KEY] = current.organization.public_id

    def current_app():
        if current is None or "app_id" not in kwargs:
            return None
        return App.objects.filter(organization=current.organization, public_id=kwargs["app_id"]).first()

    return {
        "nav_memberships": memberships,
        "current_membership": current,
        "current_org": current.organization if current else None,
        "current_app": SimpleLazyObject(current_app) if current else None,
    }
