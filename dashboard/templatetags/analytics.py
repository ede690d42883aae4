"""Formatting for the analytics pages. Filters only format; views pass ready values."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def change(percent: float | None) -> str:
    """'+12%', '−5%', '±0%' against the previous period; '' when there is nothing to compare."""
    if percent is None:
        return ""
    rounded = round(percent)
    if rounded == 0:
        return "±0%"
    return f"+{rounded:,}%" if rounded > 0 else f"−{abs(rounded):,}%"


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


@register.filter
def duration(ms: float | None) -> str:
    """Milliseconds as a person reads them: '850 ms', '1.2 s', '3 min 5 s'."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
