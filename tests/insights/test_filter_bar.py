"""The shared filter bar's state: range and filters read from, and written back to, the query string."""

from __future__ import annotations

from datetime import timedelta

from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils import timezone

from dashboard import filter_bar
from dashboard.filters import Filters
from tests.dashboard.conftest import sdk_event, store


def test_the_bar_offers_the_range_values_and_keeps_every_filter_in_its_links(app):
    now = timezone.now()
    store(app, sdk_event(now - timedelta(hours=2), os="windows", version="2.0.0", ci=True), now=now)
    request = RequestFactory().get("/", {"range": "90d", "os": "windows", "ci": "true", "arch": ""})
    state = filter_bar.page_state(request, [app.pk])

    assert state.filters == Filters(os="windows", ci=True)
    assert state.query == "range=90d&os=windows&ci=true"
    assert state.with_filter("version", "2.0.0") == "range=90d&version=2.0.0&os=windows&ci=true"
    assert state.without_filter("os") == "range=90d&ci=true"

    context = filter_bar.context([app.pk], state)
    html = render_to_string("dashboard/_filter_bar.html", context)
    assert '<option value="windows" selected>windows</option>' in html
    assert '<option value="2.0.0">2.0.0</option>' in html  # offered: seen in the range
    assert "?range=7d&amp;os=windows&amp;ci=true" in html  # presets keep the filters
    assert "OS: windows" in html and "CI: CI" in html


def test_dates_make_a_custom_range_and_bad_filter_values_are_ignored(app):
    request = RequestFactory().get("/", {"range": "7d", "start": "2026-03-01", "end": "2026-03-05", "ci": "maybe"})
    state = filter_bar.page_state(request, [app.pk])
    assert state.preset == "custom"
    assert state.filters == Filters()
    assert state.query == "range=custom&start=2026-03-01&end=2026-03-05"
