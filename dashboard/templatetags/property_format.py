"""Formatting of the Properties page's numbers. Filters only format."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.html import format_html

from telemetry.properties import EXACT

register = template.Library()

EXACT_DIGITS = 15  # an exact figure with more significant digits is shown rounded, the exact value on hover


@register.filter
def exact_number(value: Decimal | None) -> str:
    """An exact decimal in full ("1,234.5", "0.3"), or rounded to 15 significant
    digits with the exact value in a tooltip when it is longer than that."""
    if value is None:
        return "—"
    number = value.normalize(EXACT)
    if len(number.as_tuple().digits) <= EXACT_DIGITS and -7 <= number.adjusted() < EXACT_DIGITS:
        return format(number, ",f")
    return format_html('<span class="rounded" title="Exactly {}">{}</span>', format(number, "f"), format(number, ",.15g"))


@register.filter
def mean_number(value: Decimal | None) -> str:
    """A mean (exact sum / count) to 6 significant digits."""
    if value is None:
        return "—"
    number = value.normalize(EXACT)
    if -7 <= number.adjusted() < 15:
        return format(number.quantize(Decimal(1).scaleb(min(0, number.adjusted() - 5)), context=EXACT).normalize(EXACT), ",f")
    return format(number, ",.6g")


@register.filter
def approx_number(value: float | None) -> str:
    """A percentile (a bucket edge) to 4 significant digits."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    return format(value, ",.4g")
