"""What every analytics page's filter bar needs: the range, the filters, and the values to offer.

A view calls `page_state(request, app_ids)` once and passes the result to
its template, which includes templates/dashboard/_filter_bar.html. The range
and the filters both live in the query string (dashboard.forms.RangeForm,
dashboard.filters.Filters), so a filtered view is a link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest
from django.utils import timezone

from dashboard import stats
from dashboard.filters import FIELDS, LABELS, Filters, shown
from dashboard.forms import CUSTOM, RangeForm

# Values offered per field: the most frequent in the range, plus the one in effect.
OPTIONS_LIMIT = 30
_OPTION_DIMENSIONS = {"version": "version", "os": "os", "arch": "arch", "ci": "ci"}


@dataclass(frozen=True)
class Option:
    value: str  # as in the query string
    label: str
    selected: bool


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    options: list[Option]


@dataclass(frozen=True)
class PageState:
    range_form: RangeForm
    period: stats.Period  # prepared by stats.with_daily_rollups
    filters: Filters

    @property
    def preset(self) -> str:
        return self.range_form.preset

    @property
    def range_items(self) -> list[tuple[str, str]]:
        if self.preset == CUSTOM:
            data = self.range_form.cleaned_data
            return [("range", CUSTOM), ("start", data["start"].isoformat()), ("end", data["end"].isoformat())]
        return [("range", self.preset)]

    @property
    def query(self) -> str:
        """Range and filters as a query string: the same view on another page."""
        return urlencode(self.range_items + self.filters.items())

    @property
    def range_query(self) -> str:
        return urlencode(self.range_items)

    def with_filter(self, name: str, value) -> str:
        """The query string of this view with one more filter (a clicked breakdown row)."""
        return urlencode(self.range_items + self.filters.with_value(name, value).items())

    def without_filter(self, name: str) -> str:
        return urlencode(self.range_items + self.filters.without(name).items())

    def preset_query(self, preset: str) -> str:
        return urlencode([("range", preset), *self.filters.items()])


def page_state(request: HttpRequest, app_ids: Sequence[int]) -> PageState:
    form = RangeForm(request.GET or None, now=timezone.now())
    form.is_valid()  # an unbound or invalid form falls back to the default preset
    period = stats.with_daily_rollups(list(app_ids), form.time_range())
    return PageState(range_form=form, period=period, filters=Filters.from_query(request.GET))


def filter_fields(app_ids: Sequence[int], state: PageState) -> list[FilterField]:
    """The bar's select boxes: each field's most frequent values in the range (plain rollups, one query)."""
    values = stats.top_values(app_ids, period=state.period, dimensions=list(_OPTION_DIMENSIONS.values()), limit=OPTIONS_LIMIT)
    fields = []
    for name in FIELDS:
        current = dict(state.filters.items()).get(name)
        found = [raw for raw, _ in values.get(_OPTION_DIMENSIONS[name], [])]
        if name == "ci":
            choices = [("true", "CI"), ("false", "Not CI")]
        else:
            choices = [(raw if raw else "(none)", shown(name, raw)) for raw in found]
        if current is not None and current not in {value for value, _ in choices}:
            choices.append((current, current))
        fields.append(
            FilterField(
                name=name,
                label=LABELS[name],
                options=[Option(value=value, label=label, selected=value == current) for value, label in choices],
            )
        )
    return fields


def context(app_ids: Sequence[int], state: PageState) -> dict:
    """Template context of the filter bar partial."""
    return {
        "state": state,
        "range_form": state.range_form,
        "preset": state.preset,
        "presets": [(key, label, state.preset_query(key)) for key, (label, _) in stats.PRESETS.items()],
        "filters": state.filters,
        "filter_fields": filter_fields(app_ids, state),
        "filter_chips": [(label, value, state.without_filter(name)) for name, label, value in state.filters.describe()],
        "period": state.period,
    }
