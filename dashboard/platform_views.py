"""The platforms page: users, events, command runs and failures per OS × arch, and per OS version."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from dashboard import filter_bar, platforms, stats
from dashboard.forms import CUSTOM
from organizations.access import get_app_access

# Shown until the viewer asks for all (`?all=1`); the page says what is left out.
PLATFORMS_SHOWN = 15
OS_VERSIONS_SHOWN = 10


@login_required
@require_safe
def platforms_page(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    state = filter_bar.page_state(request, [app.pk])
    show_all = request.GET.get("all") == "1"
    everything = platforms.platforms([app.pk], period=state.period, filters=state.filters)
    shown = everything if show_all else platforms.cut(everything, platforms=PLATFORMS_SHOWN, os_versions=OS_VERSIONS_SHOWN)
    context = {
        **filter_bar.context([app.pk], state, keep=[("all", "1")] if show_all else ()),
        "organization": access.organization,
        "access": access,
        "app": app,
        "platforms": shown,
        "show_all": show_all,
        "cut_query": state.query,
        "platforms_shown": PLATFORMS_SHOWN,
        "wider_query": state.preset_query("90d"),
        "all_query": "&".join(part for part in (state.query, "all=1") if part),
        "range_label": "Custom range" if state.preset == CUSTOM else stats.PRESETS[state.preset][0],
        "ever_had_events": bool(everything.rows) or stats.has_events([app.pk]),
    }
    return render(request, "dashboard/platforms.html", context)
