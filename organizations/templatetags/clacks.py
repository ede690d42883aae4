"""Formatting for templates: times in the viewer's zone (organizations.timezones), UTC on hover."""

from __future__ import annotations

from datetime import datetime, timezone

from django import template
from django.utils import timezone as django_timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def timetag(value: datetime | None, style: str = "datetime"):
    """`<time>` in the viewer's time zone with its abbreviation ("10 Mar 2026, 13:30 CET"),
    formatted here rather than by a script; `datetime` holds the UTC instant and the
    title shows it in UTC on hover (docs/time.md).

    `style` is "datetime" (default) or "date"."""
    if not value:
        return ""
    utc = value.astimezone(timezone.utc)
    local = django_timezone.localtime(value)
    iso = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    if style == "date":
        text = f"{local.day} {local:%b %Y}"
    else:
        text = f"{local.day} {local:%b %Y}, {local:%H:%M} {local:%Z}"
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        iso,
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        text,
    )


@register.filter
def retention_label(days: int | None) -> str:
    if days is None:
        return "forever"
    return f"{days} day{'s' if days != 1 else ''}"


def _plain(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:
            return f"{_plain(value['from'])} → {_plain(value['to'])}"
        # Sorted: PostgreSQL's jsonb does not keep the order the keys were written in.
        return ", ".join(f"{key} {_plain(value[key])}" for key in sorted(value))
    return str(value)


@register.filter
def audit_details(details) -> list[tuple[str, str]]:
    """An audit entry's details as (label, readable text) pairs: changes read "old → new"."""
    if not isinstance(details, dict):
        return []
    return [(str(key).replace("_", " "), _plain(value)) for key, value in details.items()]
