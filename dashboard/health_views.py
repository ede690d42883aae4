"""Release health pages: every version's commands, and one command's page (dashboard.health)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from dashboard import charts, filter_bar, health, stats
from dashboard.filters import NONE
from organizations.access import get_app_access
from telemetry import rollups


class CommandConverter:
    """A command name as one URL part: any text, slashes included.

    reverse() percent-encodes it; two things need more. Django's `path`
    converter refuses newlines, and browsers remove "." and ".." path
    segments (encoded or not) before sending, so such segments get a "~" in
    front and every "~" of the name is doubled: a bijection that leaves
    ordinary names as they are."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        parts = []
        for segment in value.split("/"):
            if segment in ("~.", "~.."):
                parts.append(segment[1:])
            elif segment.replace("~~", "").count("~"):
                raise ValueError("not a name this converter wrote")
            else:
                parts.append(segment.replace("~~", "~"))
        return "/".join(parts)

    def to_url(self, value: str) -> str:
        parts = []
        for segment in str(value).replace("~", "~~").split("/"):
            parts.append("~" + segment if segment in (".", "..") else segment)
        return "/".join(parts)


def _page(request: HttpRequest, org_id: str, app_id: str):
    app, access = get_app_access(request.user, org_id, app_id)
    state = filter_bar.page_state(request, [app.pk])
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "span_label": state.span_label,
        "wider_query": state.preset_query("90d"),
        **filter_bar.context([app.pk], state),
    }
    return app, state, context


def _thresholds() -> dict:
    return {
        "significance": health.SIGNIFICANCE,
        "min_runs": health.MIN_RUNS,
        "min_failure_rise": health.MIN_FAILURE_RISE,
        "min_slowdown": int(health.MIN_SLOWDOWN * 100),
    }


@login_required
@require_safe
def release_health(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, state, context = _page(request, org_id, app_id)
    report = health.release_health([app.pk], period=state.period, filters=state.filters)
    context.update(
        report=report,
        thresholds=_thresholds(),
        shown_versions=health.SHOWN_VERSIONS,
        ever_had_events=not report.empty or stats.has_events([app.pk]),
        all_versions_query=state.without_filter("version"),
    )
    return render(request, "dashboard/release_health.html", context)


@login_required
@require_safe
def command_detail(request: HttpRequest, org_id: str, app_id: str, command: str) -> HttpResponse:
    app, state, context = _page(request, org_id, app_id)
    name = health.command_name(command)
    detail = None if name is None else health.command_detail([app.pk], period=state.period, filters=state.filters, command=name)
    if detail is not None and not detail.empty:
        chart = charts.bar_chart(
            [stats.Bucket(start=bucket.start, count=bucket.outcomes.runs) for bucket in detail.trend], hourly=state.period.hourly
        )
        context["chart"] = replace(chart, title=f"Runs per {state.period.bucket} (UTC)")
        # A platform row filters the page by its OS and arch (the filter bar's chips undo it).
        context["platforms"] = [
            (row, urlencode(state.range_items + state.filters.with_value("os", row.os).with_value("arch", row.arch).items()))
            for row in detail.by_platform
        ]
        context["versions"] = [(row, state.with_filter("version", row.version)) for row in detail.by_version]
    context.update(
        command=name if name is not None else command,
        detail=detail,
        thresholds=_thresholds(),
        none=NONE,
        max_flags=rollups.MAX_FLAGS,
    )
    return render(request, "dashboard/command_detail.html", context)
