"""The Releases page of an app: users per version, the versions table, the
newest version's rollout and the users left on old versions (dashboard.releases)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from dashboard import charts, filter_bar, releases, stats
from dashboard.release_forms import BehindForm
from organizations.access import get_app_access
from telemetry.periods import UTC, start_of_day


@login_required
@require_safe
def releases_page(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    app_ids = [app.pk]
    state = filter_bar.page_state(request, app_ids)
    form = BehindForm(request.GET)
    today = timezone.now().astimezone(UTC).date()
    first, last = releases.range_days(state.period)
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "behind_form": form,
        "behind_hidden": state.range_items + state.filters.items(),
        "first_day": first,
        "last_day": last,
        "today": today,
        "ever_had_events": stats.has_events(app_ids),
        **filter_bar.context(app_ids, state),
    }
    if context["ever_had_events"]:
        filters, version = state.filters, state.filters.version
        history = releases.history(app_ids, filters=filters, today=today)
        week = releases.window(app_ids, filters=filters, today=today)
        users = releases.daily_users(history, period=state.period, version=version)
        series = [(s.label, s.per_day) for s in reversed(users.series)]
        context.update(
            history=history,
            week=week,
            users=users,
            users_chart=charts.stacked_chart(
                [start_of_day(day) for day in users.days],
                series,
                title=f"Active users of {version} per day (UTC)" if version else "Active users per version per day (UTC)",
                unit="users",
                rest=0 if users.rest is not None else None,
            ),
            table=releases.version_table(app_ids, history, week, period=state.period, filters=filters),
            rollout=releases.rollout(history, version=version),
            old=releases.old_versions(history, week, limit=form.limit(), version=version),
        )
        # A version's row links to the same view filtered by it, as breakdown rows do.
        context["table_rows"] = [(row, state.with_filter("version", row.version)) for row in context["table"].rows]
        rollout = context["rollout"]
        if rollout is not None:
            context["rollout_chart"] = charts.stacked_chart(
                [start_of_day(day.day) for day in rollout.days],
                [(f"Share on {rollout.version}", [day.share or 0.0 for day in rollout.days])],
                title=f"Share of active users who ran {rollout.version}, per day since first seen (UTC)",
                unit="% of active users",
                percent=True,
            )
    return render(request, "dashboard/releases.html", context)
