"""The Retention page of an app: active users, new and returning users, cohorts."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from dashboard import activity, activity_charts, filter_bar, stats
from organizations.access import get_app_access
from telemetry.periods import UTC


@login_required
@require_safe
def retention(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    app_ids = [app.pk]
    state = filter_bar.page_state(request, app_ids)
    period = state.period
    today = timezone.now().astimezone(UTC).date()
    # Figures are per UTC day: every day the range touches (the 24-hour preset touches two).
    first, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
    context = {
        **filter_bar.context(app_ids, state),
        "organization": access.organization,
        "access": access,
        "app": app,
        "ever_had_events": stats.has_events(app_ids),
        "first": first,
        "last": min(last, today),
        "today": today,
    }
    if context["ever_had_events"]:
        figures = activity.retention(app_ids, first, last, filters=state.filters, today=today)
        context.update(
            figures=figures,
            active_chart=activity_charts.active_users_chart(figures.days),
            new_chart=activity_charts.new_returning_chart(figures.buckets, weekly=figures.weekly_buckets),
            weekly_offsets=range(1, activity.WEEKLY_OFFSETS + 1),
            daily_offsets=range(1, activity.DAILY_OFFSETS + 1),
        )
    return render(request, "dashboard/retention.html", context)
