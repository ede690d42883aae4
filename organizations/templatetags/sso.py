"""The single sign-on button of the sign-in page, and whether single sign-on is on."""

from __future__ import annotations

from django import template
from django.conf import settings

from organizations.oidc import is_enabled

register = template.Library()


@register.inclusion_tag("accounts/_sso_button.html")
def sso_button(next_url: str = ""):
    """Nothing while single sign-on is off; else a link that starts it, keeping `next`."""
    return {"enabled": is_enabled(), "label": settings.OIDC_BUTTON_LABEL, "next": next_url}


@register.simple_tag
def sso_enabled() -> bool:
    return is_enabled()
