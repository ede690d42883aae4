"""Query parameters of the analytics endpoints: the dashboard's filter bar, checked.

The range (`range`, `start`, `end`) and the filters (`version`, `os`, `arch`,
`ci`) mean what they mean on the dashboard (README, "The filter bar"); the state
is built by the very function the pages use (dashboard.filter_bar.page_state), so
the same query string gives the same figures. Where a page falls back to the
default range with a message, the API answers 400.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from api.errors import ApiError
from dashboard import filter_bar, stats
from dashboard.forms import CUSTOM, RangeForm

RANGE_CHOICES = [*stats.PRESETS, CUSTOM]


def page_state(request, app_ids: list[int], *, figures: bool = True) -> filter_bar.PageState:
    """The dashboard's PageState for this query; ApiError(400) for a range the page would refuse."""
    query = request.query_params
    if any(query.get(name) for name in ("range", "start", "end")):
        form = RangeForm(query, now=timezone.now())
        if not form.is_valid():
            lines = [f"{name}: {message}" if name != "__all__" else message
                     for name, messages in form.errors.items() for message in messages]  # fmt: skip
            raise ApiError(400, "invalid_range", lines[0], details="; ".join(lines))
    if query.get("ci") not in (None, "", "true", "false"):
        raise ApiError(400, "invalid_request", "ci: use true or false.")
    return filter_bar.page_state(request._request, app_ids, figures=figures)


def range_json(state: filter_bar.PageState) -> dict:
    """The range in effect and the filters applied, as every analytics answer starts."""
    period = state.period
    return {
        "range": {
            "preset": state.preset,
            "start": period.start.isoformat().replace("+00:00", "Z"),
            "end": period.end.isoformat().replace("+00:00", "Z"),
            "bucket": period.bucket,
        },
        "filters": dict(state.filters.items()),
    }


RANGE_SCHEMA = {
    "type": "object",
    "properties": {
        "preset": {"type": "string", "enum": RANGE_CHOICES},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time", "description": "Excluded."},
        "bucket": {"type": "string", "enum": ["hour", "day"]},
    },
    "required": ["preset", "start", "end", "bucket"],
    "additionalProperties": False,
}
FILTERS_SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in ("version", "os", "arch", "ci")},
    "additionalProperties": False,
}

RANGE_PARAMETERS = [
    OpenApiParameter("range", OpenApiTypes.STR, enum=RANGE_CHOICES,
                     description="A preset (default 7d), or `custom` with `start` and `end`."),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First UTC day of a custom range."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last UTC day of a custom range (included)."),
]  # fmt: skip
FILTER_PARAMETERS = [
    OpenApiParameter("version", OpenApiTypes.STR, description="Service version; `(none)` for events without."),
    OpenApiParameter("os", OpenApiTypes.STR, description="Operating system; `(none)` for events without."),
    OpenApiParameter("arch", OpenApiTypes.STR, description="Architecture; `(none)` for events without."),
    OpenApiParameter("ci", OpenApiTypes.STR, enum=["true", "false"], description="Only events sent in CI, or only outside it."),
]
ANALYTICS_PARAMETERS = RANGE_PARAMETERS + FILTER_PARAMETERS


class Empty(serializers.Serializer):
    pass
