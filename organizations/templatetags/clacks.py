"""Formatting for templates: times in UTC that localtime.js shows in the viewer's zone."""

from __future__ import annotations

from datetime import datetime, timezone

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def timetag(value: datetime | None, style: str = "datetime"):
    """`<time>` with the UTC instant in `datetime` and `title`; static/js/localtime.js
    rewrites the text to the browser's time zone, and the title keeps UTC on hover.

    `style` is "datetime" (default) or "date"."""
    if not value:
        return ""
    utc = value.astimezone(timezone.utc)
    iso = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = utc.strftime("%Y-%m-%d") if style == "date" else utc.strftime("%Y-%m-%d %H:%M UTC")
    return format_html(
        '<time datetime="{}" title="{} UTC" data-style="{}">{}</time>',
        iso,
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        style,
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
