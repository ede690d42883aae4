"""Share links and badges: read-only public views of some of one app's analytics.

docs/sharing.md says what a shared page shows and hides. In short: the link's
token is the only key (stored hashed, shown once), an optional password is kept
with Django's password hasher, revoked or expired links are gone (404), and the
figures are the dashboard's own (dashboard.stats, dashboard.releases,
dashboard.platforms), for the app alone and without filters.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import transaction
from django.utils.html import escape

from dashboard import platforms, releases, stats
from dashboard.charts import bar_chart
from dashboard.filters import Filters
from dashboard.models import SHARE_SECTIONS, ShareLink
from organizations.models import App, hash_token
from organizations.services import record_audit
from telemetry.periods import UTC

SECTION_NAMES = [name for name, _ in SHARE_SECTIONS]
# The ranges a shared page offers (a subset of the dashboard's presets, stats.PRESETS).
SHARED_PRESETS = ("7d", "30d", "90d")
SHARED_DEFAULT_PRESET = "30d"
PLATFORMS_SHOWN = 15


class ShareLinkError(ValueError):
    """A share link that cannot be made as asked (the form shows the message)."""


@dataclass(frozen=True)
class IssuedShareLink:
    link: ShareLink
    token: str  # shown once: only its hash is stored


def create_share_link(
    app: App,
    *,
    sections: list[str],
    label: str = "",
    password: str = "",
    expires_at: datetime | None = None,
    by=None,
    now: datetime,
) -> IssuedShareLink:
    """A new link to `sections` of the app's analytics, recorded in the audit log."""
    unknown = set(sections) - set(SECTION_NAMES)
    if unknown or not sections:
        raise ShareLinkError("Choose at least one section to share.")
    if "badges" in sections and password:
        raise ShareLinkError("Badges are images in a README, which cannot send a password: leave one of them out.")
    if expires_at is not None and expires_at <= now:
        raise ShareLinkError("The expiry must be in the future.")
    token = secrets.token_urlsafe(24)
    with transaction.atomic():
        link = ShareLink.objects.create(
            app=app,
            label=label,
            token_hash=hash_token(token),
            token_prefix=token[:6],
            sections=[name for name in SECTION_NAMES if name in sections],
            password_hash=make_password(password) if password else "",
            expires_at=expires_at,
            created_by=by if getattr(by, "is_authenticated", False) else None,
            created_at=now,
        )
        record_audit(
            app.organization,
            action="share.create",
            target=app.public_id,
            actor=by,
            details={
                "link": link.token_prefix,
                "label": label,
                "sections": link.sections,
                "password": bool(password),
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return IssuedShareLink(link=link, token=token)


def revoke_share_link(link: ShareLink, *, by=None, now: datetime) -> bool:
    """Revoke the link (its pages and badges answer 404 from now on); False if it already was."""
    with transaction.atomic():
        updated = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now)
        if updated:
            record_audit(
                link.app.organization,
                action="share.revoke",
                target=link.app.public_id,
                actor=by,
                details={"link": link.token_prefix, "label": link.label},
            )
    link.revoked_at = link.revoked_at or now
    forget_badges(link)
    return bool(updated)


def find_share_link(token: str, *, now: datetime) -> ShareLink | None:
    """The usable link with this token (not revoked or expired, its app and organization
    active), with its app, or None."""
    if not token or len(token) > 64:
        return None
    return ShareLink.objects.usable(now=now).select_related("app").filter(token_hash=hash_token(token)).first()


def password_matches(link: ShareLink, password: str) -> bool:
    return link.has_password and check_password(password, link.password_hash)


def unlock_key(link: ShareLink) -> str:
    """What a visitor's session holds once they gave the link's password; it names the
    password's hash, so a link whose password changed asks again."""
    return hashlib.sha256(f"{link.pk}:{link.password_hash}".encode()).hexdigest()[:32]


# --- Rate limit --------------------------------------------------------------------------


def over_rate_limit(link_token: str, client: str, *, now: datetime) -> int | None:
    """Count one request of `client` to the link in the current minute (in the cache: shared by
    every worker with Redis); the seconds until the minute ends when over the limit, else None."""
    limit = settings.CLACKS_SHARE_REQUESTS_PER_MINUTE
    minute = int(now.timestamp()) // 60
    key = "share-rate:" + hashlib.sha256(f"{link_token}:{client}:{minute}".encode()).hexdigest()
    cache.add(key, 0, 90)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, 90)
        count = 1
    if count <= limit:
        return None
    return 60 - int(now.timestamp()) % 60


# --- The shared page's figures ------------------------------------------------------------


def shared_figures(link: ShareLink, *, preset: str, now: datetime) -> dict:
    """Every figure the link's sections show, for the preset range, from the dashboard's own functions."""
    app_ids = [link.app_id]
    period = stats.with_daily_rollups(app_ids, stats.preset_range(preset, now=now))
    figures: dict = {"period": period}
    wants = set(link.sections)
    if wants & {"overview", "breakdowns", "commands"}:
        summary = stats.summary(app_ids, period=period)
        if "overview" in wants:  # the totals are the overview's, not the other sections'
            figures["summary"] = summary
            figures["chart"] = bar_chart(stats.events_over_time(app_ids, period=period), hourly=period.hourly)
        if summary.events.current and "breakdowns" in wants:
            figures["breakdowns"] = stats.breakdowns(app_ids, period=period)
        if summary.events.current and "commands" in wants:
            figures["commands"] = stats.command_stats(app_ids, period=period)
            if figures["commands"].runs:
                figures["top_commands"] = stats.top_commands(app_ids, period=period)
    today = now.astimezone(UTC).date()
    if "releases" in wants:
        history = releases.history(app_ids, filters=Filters(), today=today)
        week = releases.window(app_ids, filters=Filters(), today=today)
        figures["versions"] = releases.version_table(app_ids, history, week, period=period, filters=Filters())
    if "platforms" in wants:
        everything = platforms.platforms(app_ids, period=period)
        figures["platforms"] = platforms.cut(everything, platforms=PLATFORMS_SHOWN, os_versions=0)
    return figures


# --- Badges ------------------------------------------------------------------------------

BADGES = {
    "users": "users in the last 30 days",
    "events": "events in the last 30 days",
    "version": "the newest version",
    "adoption": "the share of the last 7 days' users who ran the newest version",
}


@dataclass(frozen=True)
class Badge:
    label: str
    value: str
    color: str  # a hex colour of the value's half

    @property
    def svg(self) -> str:
        return badge_svg(self.label, self.value, color=self.color)


def _compact(number: int) -> str:
    if number >= 1_000_000:
        return f"{number / 1_000_000:.1f}M".replace(".0M", "M")
    if number >= 10_000:
        return f"{number / 1000:.0f}k"
    if number >= 1000:
        return f"{number / 1000:.1f}k".replace(".0k", "k")
    return str(number)


def badge_figures(link: ShareLink, kind: str, *, now: datetime) -> Badge:
    """The badge's text from the dashboard's figures; KeyError for an unknown kind."""
    if kind not in BADGES:
        raise KeyError(kind)
    app_ids = [link.app_id]
    if kind in ("users", "events"):
        period = stats.with_daily_rollups(app_ids, stats.preset_range("30d", now=now))
        summary = stats.summary(app_ids, period=period)
        change = summary.users if kind == "users" else summary.events
        approx = "≈" if change.estimated else ""
        return Badge(f"{kind} (30 days)", approx + _compact(change.current), "#2b6cb0")
    today = now.astimezone(UTC).date()
    history = releases.history(app_ids, filters=Filters(), today=today)
    if history.newest is None:
        return Badge("version" if kind == "version" else "latest version", "no data", "#718096")
    if kind == "version":
        return Badge("version", history.newest, "#2b6cb0")
    week = releases.window(app_ids, filters=Filters(), today=today)
    share = week.ran(history.newest) * 100 / week.users if week.users else None
    value = "no users" if share is None else f"{share:.0f}%"
    color = "#718096" if share is None else ("#2f855a" if share >= 50 else "#b7791f")
    return Badge(f"{history.newest} adoption", value, color)


def _text_width(text: str) -> int:
    """Rough width in pixels of text in 11 px Verdana-like type: enough to size a badge."""
    narrow = sum(1 for ch in text if ch in "ijlrtf.,:;!|' ")
    return int(7 * (len(text) - narrow) + 4 * narrow)


def badge_svg(label: str, value: str, *, color: str) -> str:
    """A flat two-part badge; both texts are escaped (a version comes from the SDK)."""
    label, value = label[:60], value[:60]
    left, right = _text_width(label) + 12, _text_width(value) + 12
    width = left + right
    title = escape(f"{label}: {value}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect width="{left}" height="20" fill="#4a5568"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{escape(color)}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{escape(value)}</text>'
        f"</g></svg>"
    )


def _badge_key(link_pk: int, kind: str) -> str:
    return f"share-badge:v1:{link_pk}:{kind}"


def cached_badge(link: ShareLink, kind: str, *, now: datetime) -> tuple[str, str]:
    """(svg, etag) of the badge, from the cache for CLACKS_BADGE_CACHE_SECONDS."""
    key = _badge_key(link.pk, kind)
    hit = cache.get(key)
    if hit is not None:
        return hit
    svg = badge_figures(link, kind, now=now).svg
    etag = '"' + hashlib.sha256(svg.encode()).hexdigest()[:32] + '"'
    cache.set(key, (svg, etag), settings.CLACKS_BADGE_CACHE_SECONDS)
    return svg, etag


def badge_max_age() -> int:
    """Seconds a browser or an image proxy may keep a badge (the server's cache keeps it as long)."""
    return settings.CLACKS_BADGE_CACHE_SECONDS


def forget_badges(link: ShareLink) -> None:
    cache.delete_many([_badge_key(link.pk, kind) for kind in BADGES])


def expiry_after(days: int | None, *, now: datetime) -> datetime | None:
    return None if days is None else now + timedelta(days=days)
