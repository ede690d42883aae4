"""`disabled_alert_channels` for every organization page: the names of the channels that
delivery disabled (alerts.delivery), read only when a template shows the banner."""

from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from alerts.models import Channel


def disabled_channels(request) -> dict:
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    org_id = match.kwargs.get("org_id") if match is not None else None
    if not org_id or user is None or not user.is_authenticated:
        return {}

    def names() -> list[str]:
        # Through the membership: a page of someone else's organization shows nothing.
        return list(
            Channel.objects.filter(
                organization__public_id=org_id, organization__memberships__user=user, is_active=False, disabled_at__isnull=False
            ).values_list("name", flat=True)
        )

    return {"disabled_alert_channels": SimpleLazyObject(names)}
