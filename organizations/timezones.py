"""The viewer's time zone: every time on a page is shown in it (docs/time.md).

The zone is the one chosen in the person's profile; without one, the browser's
(static/js/page.js keeps it in the `clacks_tz` cookie); without that, UTC. The
middleware activates it for the request, so `timezone.localtime` and the
`timetag` filter use it; analytics ranges and buckets stay whole UTC days.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable
from datetime import datetime, tzinfo

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from organizations.models import Profile

COOKIE = "clacks_tz"
# The profile's zone, kept in the session so a page costs no extra query ("" = none chosen).
SESSION_KEY = "clacks_time_zone"


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name this Python knows, sorted (the profile form's choices)."""
    return tuple(sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC"))


def zone_named(name: str | None) -> tzinfo | None:
    """The zone of that IANA name, or None for "" or a name that is not one."""
    if not name or name not in _known():
        return None
    return zoneinfo.ZoneInfo(name)


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def profile_time_zone(user) -> str:
    """The zone name the user chose, or "" when they follow their browser's."""
    return Profile.objects.filter(user=user).values_list("time_zone", flat=True).first() or ""


def set_profile_time_zone(user, *, name: str) -> Profile:
    """Save the user's zone ("" = follow the browser); raises ValueError for an unknown name."""
    if name and zone_named(name) is None:
        raise ValueError(f"{name!r} is not a time zone")
    profile, _ = Profile.objects.update_or_create(user=user, defaults={"time_zone": name})
    return profile


def describe(moment: datetime) -> str:
    """The zone in effect at `moment`, as people read it: "CET, UTC+01:00"."""
    local = timezone.localtime(moment)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset not in ("+0000", "") else "UTC"
    abbreviation = local.strftime("%Z")
    return offset if abbreviation in ("UTC", offset) or abbreviation.startswith(("+", "-")) else f"{abbreviation}, {offset}"


def time_zone_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    """Activate the viewer's zone for the request (after AuthenticationMiddleware)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        zone, source = None, "default"
        try:
            name = _profile_zone_name(request)
        except (OperationalError, InterfaceError):
            # The database is away: leave it to the view to meet the same error, which
            # config.middleware.DatabaseUnavailableMiddleware turns into the friendly 503.
            name = ""
        zone = zone_named(name)
        source = "profile" if zone else source
        if zone is None:
            zone = zone_named(request.COOKIES.get(COOKIE))
            source = "browser" if zone else source
        request.time_zone_source = source
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return get_response(request)
        finally:
            timezone.deactivate()

    return middleware


def _profile_zone_name(request: HttpRequest) -> str:
    """The signed-in user's chosen zone name ("" for none), kept in their session."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    name = request.session.get(SESSION_KEY)
    if name is None:
        name = request.session[SESSION_KEY] = profile_time_zone(user)
    return name
