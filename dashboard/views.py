"""Analytics pages. Each view checks access, reads its numbers from dashboard.stats
and hands them to a template; no view builds an event query itself."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from dashboard import checklist, filter_bar, filtered_stats, health, live, stats
from dashboard.charts import bar_chart
from dashboard.forms import CUSTOM, EventFilterForm
from organizations.access import get_app_access, get_org_access
from organizations.models import Role
from organizations.views import home_redirect
from telemetry import limits, scheduler

EVENTS_PER_PAGE = 50


def home(request: HttpRequest) -> HttpResponse:
    # First run, sign-in, or the organization used last: decided with the accounts.
    return home_redirect(request)


def _length_words(period: stats.Period) -> str:
    hours = int(period.length.total_seconds() // 3600)
    if period.hourly:
        return f"{hours} hours"
    days = hours // 24
    return "day" if days == 1 else f"{days} days"


def _range_label(state: filter_bar.PageState) -> str:
    return "Custom range" if state.preset == CUSTOM else stats.PRESETS[state.preset][0]


def _analytics(app_ids: list[int], state: filter_bar.PageState) -> dict:
    """Everything the shared analytics section shows, for one app or an organization.

    Without a filter it reads dashboard.stats (plain rollups, figures of closed
    days cached); with one, dashboard.filtered_stats (segmented rollups, UserDay)."""
    period, filters = state.period, state.filters
    reads = filtered_stats.Reads(app_ids, filters) if filters.active else None
    figures = _figures(app_ids, state, reads)
    summary = figures["summary"]
    context = {
        **filter_bar.context(app_ids, state),
        **figures,
        "range_label": _range_label(state),
        "span_label": state.span_label,
        "previous_label": f"the previous {_length_words(period)}",
        "wider_query": state.preset_query("90d"),
        "ever_had_events": summary.events.current > 0 or stats.has_events(app_ids),
    }
    if summary.events.current:
        if filters.active:
            context["breakdowns"] = filtered_stats.breakdowns(app_ids, period=period, filters=filters, reads=reads)
            context["commands"] = filtered_stats.command_stats(app_ids, period=period, filters=filters, reads=reads)
        else:
            context["breakdowns"] = stats.breakdowns(app_ids, period=period)
            context["commands"] = stats.command_stats(app_ids, period=period)
        if context["commands"].runs:
            if filters.active:
                context["top_commands"] = filtered_stats.top_commands(
                    app_ids, period=period, filters=filters, reads=reads
                )
            else:
                context["top_commands"] = stats.top_commands(app_ids, period=period)
    elif context["ever_had_events"]:
        context["last_event_at"] = stats.last_event_at(app_ids)
    return context


def _figures(app_ids: list[int], state: filter_bar.PageState, reads) -> dict:
    """The totals and the chart of the range: what the live view refreshes (app_live)."""
    period, filters = state.period, state.filters
    # The previous period of equal length, drawn as a faint line behind the bars. Without
    # a filter its figures were read with this period's (stats.RangeFigures): no query.
    before = replace(period, start=period.previous.start, end=period.previous.end)
    if filters.active:
        buckets = filtered_stats.events_over_time(app_ids, period=period, filters=filters, reads=reads)
        previous = filtered_stats.events_over_time(app_ids, period=before, filters=filters, reads=reads)
        summary = filtered_stats.summary(app_ids, period=period, filters=filters, reads=reads)
    else:
        buckets = stats.events_over_time(app_ids, period=period)
        previous = stats.events_over_time(app_ids, period=before)
        summary = stats.summary(app_ids, period=period)
    return {
        "summary": summary,
        "session_limit": filtered_stats.SESSION_SCAN_LIMIT,
        "chart": bar_chart(buckets, hourly=period.hourly, previous=previous),
        "recent": live.recent_events(app_ids),
    }


@login_required
@require_safe
def org_overview(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id)
    organization = access.organization
    apps = list(organization.apps.all())
    app_ids = [app.pk for app in apps]
    state = filter_bar.page_state(request, app_ids)
    context = _analytics(app_ids, state)
    if not apps:
        activity = []
    elif state.filters.active:
        activity = filtered_stats.app_activity(apps, period=state.period, filters=state.filters)
    else:
        activity = stats.app_activity(apps, period=state.period)
    context.update(
        organization=organization,
        access=access,
        apps=apps,
        activity=activity,
        usage=limits.monthly_usage(organization),
    )
    return render(request, "dashboard/org_overview.html", context)


@login_required
@require_safe
def app_overview(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    state = filter_bar.page_state(request, [app.pk])
    context = _analytics([app.pk], state)
    if "commands" in context and context["commands"].runs:
        context["regressions"] = health.newest_regressions([app.pk], period=state.period, filters=state.filters)
    context.update(organization=access.organization, access=access, app=app)
    if access.can_manage_apps:
        context["checklist"] = checklist.for_app(app)
    return render(request, "dashboard/app_overview.html", context)


@login_required
@require_POST
def checklist_dismiss(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Hide the app's first-run checklist for everyone (dashboard.checklist)."""
    app, _ = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    checklist.dismiss(app)
    messages.info(request, "The setup checklist is hidden.")
    return redirect("dashboard:app_overview", org_id=org_id, app_id=app_id)


@login_required
@require_safe
def app_live(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """The overview's figures alone, for its live view (static/js/live.js) to swap in."""
    app, access = get_app_access(request.user, org_id, app_id)
    state = filter_bar.page_state(request, [app.pk])
    reads = filtered_stats.Reads([app.pk], state.filters) if state.filters.active else None
    context = {
        **_figures([app.pk], state, reads),
        "period": state.period,
        "previous_label": f"the previous {_length_words(state.period)}",
        "app": app,
        "organization": access.organization,
    }
    if context["summary"].events.current:
        if state.filters.active:
            context["commands"] = filtered_stats.command_stats([app.pk], period=state.period, filters=state.filters, reads=reads)
        else:
            context["commands"] = stats.command_stats([app.pk], period=state.period)
    context["ever_had_events"] = context["summary"].events.current > 0 or stats.has_events([app.pk])
    response = render(request, "dashboard/_live_figures.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_safe
def app_events(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    # Every event unless the query names a range; the bar's filters apply to the raw rows.
    state = filter_bar.page_state(request, [app.pk], any_time=True, figures=False)
    form = EventFilterForm(request.GET)
    filters = replace(form.filters(), segment=state.filters)
    if not state.any_time:
        period = state.period
        filters = replace(
            filters,
            start=max(filters.start, period.start) if filters.start else period.start,
            end=min(filters.end, period.end) if filters.end else period.end,
        )
    before = stats.Cursor.decode(request.GET.get("before", ""))
    after = stats.Cursor.decode(request.GET.get("after", "")) if before is None else None
    bad_cursor = (request.GET.get("before") or request.GET.get("after")) and before is None and after is None
    page = stats.recent_events(app.pk, filters=filters, before=before, after=after, limit=EVENTS_PER_PAGE)

    # Links keep the explorer's fields and the bar's range and filters, and swap only the cursor.
    kept = [(name, value) for name, value in request.GET.items() if name in form.fields and value]
    bar = state.range_items + state.filters.items()
    context = {
        **filter_bar.context([app.pk], state, any_time=True, keep=kept),
        "organization": access.organization,
        "access": access,
        "app": app,
        "form": form,
        "page": page,
        "paged": before is not None or after is not None,
        "bad_cursor": bad_cursor,
        "bar_query": urlencode(bar),
        "bar_items": bar,
        "explorer_filtered": bool(kept),
        "filter_query": urlencode(bar + kept),
        "newer_query": urlencode([*bar, *kept, ("after", page.newer.encode())]) if page.newer else "",
        "older_query": urlencode([*bar, *kept, ("before", page.older.encode())]) if page.older else "",
        "type_suggestions": stats.recent_event_types(app.pk),
        "ever_had_events": bool(page.events) or stats.has_events([app.pk]),
    }
    return render(request, "dashboard/app_events.html", context)


@login_required
@require_safe
def event_detail(request: HttpRequest, org_id: str, app_id: str, event_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    event = stats.get_event(app.pk, event_id)
    if event is None:
        raise Http404("No such event in this application.")
    document = stats.event_document(event)
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "event": event,
        # Autoescaped by the template: event data is whatever a client sent.
        "data_json": json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True),
        "event_json": json.dumps(document, indent=2, ensure_ascii=False),
    }
    return render(request, "dashboard/event_detail.html", context)


@login_required
@require_safe
def background_jobs(request: HttpRequest) -> HttpResponse:
    # The whole server's jobs, not one organization's: for the people who run it.
    if not (request.user.is_staff or request.user.is_superuser):
        raise Http404
    context = {"jobs": scheduler.job_states(), "built_in": settings.CLACKS_SCHEDULER}
    return render(request, "dashboard/background_jobs.html", context)
