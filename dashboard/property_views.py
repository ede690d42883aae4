"""The Properties page: what events' data holds, per event type (docs/insights.md, Properties)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from dashboard import filter_bar, properties
from organizations.access import get_app_access
from telemetry.properties import Caps


@login_required
@require_safe
def properties_page(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    state = filter_bar.page_state(request, [app.pk])
    report = properties.report(
        app.pk, state.period, state.filters, event_type=request.GET.get("type"), key=request.GET.get("key"),
        split=request.GET.get("split"), now=timezone.now(),
    )  # fmt: skip

    def link(**choices) -> str:
        """This view's query string with other type/key/split choices (None drops one)."""
        kept = [(name, value) for name, value in choices.items() if value is not None]
        return "?" + "&".join(part for part in (state.query, urlencode(kept)) if part)

    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "report": report,
        "caps": Caps.from_settings(),
        "error_percent": properties.ERROR_PERCENT,
        "type_links": [(choice, link(type=choice.event_type)) for choice in report.types],
        "key_rows": [(row, link(type=report.event_type, key=row.path)) for row in report.keys],
        "hidden_state": state.range_items + state.filters.items(),
        "chart_period": {"hourly": report.hourly},
        "split_links": [
            (path, label, link(type=report.event_type, key=report.detail.path, split=path))
            for path, label in (report.detail.split_options if report.detail else [])
        ],
        "unsplit_link": link(type=report.event_type, key=report.detail.path) if report.detail else "",
        "type_link": link(type=report.event_type),
        **filter_bar.context([app.pk], state),
    }
    return render(request, "dashboard/properties.html", context)
