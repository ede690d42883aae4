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
# A breakdown (dashboard.stats.BREAKDOWNS) whose rows filter the page when clicked, and the filter each sets.
BREAKDOWN_FILTERS = {"service_version": "version", "os": "os", "arch": "arch", "ci": "ci"}
ANY_TIME = "any"  # the preset of pages that may show every event (the explorer)


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
    period: stats.Period  # prepared by stats.with_daily_rollups (unless page_state(figures=False))
    filters: Filters
    # The page shows every event whatever its time, the query naming no range
    # (page_state(any_time=True)); `period` is then the default range, for the bar's options.
    any_time: bool = False

    @property
    def preset(self) -> str:
        return ANY_TIME if self.any_time else self.range_form.preset

    @property
    def range_items(self) -> list[tuple[str, str]]:
        if self.any_time:
            return []
        if self.preset == CUSTOM:
            data = self.range_form.cleaned_data
            return [("range", CUSTOM), ("start", data["start"].isoformat()), ("end", data["end"].isoformat())]
        return [("range", self.preset)]

    @property
    def span_label(self) -> str:
        """The range's bounds in UTC words: buckets are UTC hours or days, so is this."""
        start, end = self.period.start, self.period.end
        if self.period.hourly:
            return f"{start.day} {start:%b} {start:%H}:00 – {end.day} {end:%b %Y} {end:%H}:00 UTC"
        last = end - stats.DAY
        if start == last:
            return f"{start.day} {start:%b %Y} (UTC)"
        first = f"{start.day} {start:%b}" + (f" {start:%Y}" if start.year != last.year else "")
        return f"{first} – {last.day} {last:%b %Y} (UTC days)"

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

    def with_filters(self, **values) -> str:
        """The query string of this view with several more filters (a platform is an OS and an arch)."""
        filters = self.filters
        for name, value in values.items():
            filters = filters.with_value(name, value)
        return urlencode(self.range_items + filters.items())

    def without_filter(self, name: str) -> str:
        return urlencode(self.range_items + self.filters.without(name).items())

    def preset_query(self, preset: str) -> str:
        if preset == ANY_TIME:
            return urlencode(self.filters.items())
        return urlencode([("range", preset), *self.filters.items()])

    def breakdown_query(self, dimension: str, value) -> str | None:
        """The link of a breakdown row that filters the page by its value; None for a
        dimension the bar does not filter, an unknown CI, or the filter already in effect."""
        name = BREAKDOWN_FILTERS.get(dimension)
        if name is None or (name == "ci" and value is None) or getattr(self.filters, name) == value:
            return None
        return self.with_filter(name, value)


def page_state(request: HttpRequest, app_ids: Sequence[int], *, any_time: bool = False, figures: bool = True) -> PageState:
    """The page's range and filters. With any_time, a query naming no range
    means every event (state.any_time), as the events explorer lists them.
    A page that shows no rollup figures (the explorer) passes figures=False:
    its period is then not prepared by stats.with_daily_rollups, which would
    cost it a read of the closed days' figures it has no use for."""
    form = RangeForm(request.GET or None, now=timezone.now())
    form.is_valid()  # an unbound or invalid form falls back to the default preset
    period = form.time_range()
    if figures:
        period = stats.with_daily_rollups(list(app_ids), period)
    unranged = any_time and not any(request.GET.get(name) for name in ("range", "start", "end"))
    return PageState(range_form=form, period=period, filters=Filters.from_query(request.GET), any_time=unranged)


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


def context(
    app_ids: Sequence[int], state: PageState, *, any_time: bool = False, keep: Sequence[tuple[str, str]] = ()
) -> dict:
    """Template context of the filter bar partial. `any_time` offers an "Any time"
    preset (pages built with page_state(any_time=True)); `keep` is the page's own
    query items (the explorer's), which the bar's links and form carry along."""
    extra = urlencode(list(keep))

    def kept(query: str) -> str:
        return "&".join(part for part in (query, extra) if part)

    presets = [(key, label, kept(state.preset_query(key))) for key, (label, _) in stats.PRESETS.items()]
    if any_time:
        presets.insert(0, (ANY_TIME, "Any time", kept(state.preset_query(ANY_TIME))))
    return {
        "state": state,
        "range_form": state.range_form,
        "preset": state.preset,
        "presets": presets,
        "filters": state.filters,
        "filter_fields": filter_fields(app_ids, state),
        "filter_chips": [
            (name, label, value, kept(state.without_filter(name))) for name, label, value in state.filters.describe()
        ],
        "filter_keep": list(keep),
        "clear_filters_query": kept(state.range_query) if state.filters.active else None,
        "period": state.period,
    }
