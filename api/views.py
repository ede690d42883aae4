"""REST API v1, read side: organizations, apps, and every figure of the analytics pages.

Each view checks the key's scope and organization (api.base), builds the
dashboard's range and filters from the query (api.params), calls the same
domain functions the page does, and returns their values as they are
(api.shapes). No view builds an event query itself.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from api import admin_actions
from api import schema as s
from api.base import ApiView, possible_pk
from api.errors import ApiError, not_found
from api.params import ANALYTICS_PARAMETERS, page_state, range_json
from api.resources import app_json, organization_json
from api.shapes import to_json
from dashboard import activity, filtered_stats, funnels, health, platforms, properties, releases, stats
from dashboard.models import Funnel
from dashboard.release_forms import MAX_BEHIND
from organizations.models import App
from telemetry import limits
from telemetry.periods import UTC


# --- Organizations and apps ----------------------------------------------------------------


class OrganizationList(ApiView):
    @extend_schema(operation_id="organizations_list", summary="The organizations this key may see (its own)",
                   responses=s.ok(s.obj(organizations=s.array(s.ORGANIZATION))))  # fmt: skip
    def get(self, request):
        return Response({"organizations": [organization_json(request.auth.organization)]})


class OrganizationDetail(ApiView):
    @extend_schema(operation_id="organization_get", summary="One organization, with this month's usage",
                   responses=s.ok(s.ORGANIZATION_DETAIL))  # fmt: skip
    def get(self, request, org_id: str):
        organization = self.organization(org_id)
        usage = limits.monthly_usage(organization)
        return Response({**organization_json(organization), "usage": s.usage_json(usage)})


class AppList(ApiView):
    scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(operation_id="apps_list", summary="The organization's apps, with when each last received an event",
                   responses=s.ok(s.obj(apps=s.array(s.APP))))  # fmt: skip
    def get(self, request, org_id: str):
        organization = self.organization(org_id)
        apps = list(organization.apps.select_related("organization").order_by("name"))
        received = stats.last_received_at([app.pk for app in apps])
        return Response({"apps": [app_json(app, last_received_at=received.get(app.pk)) for app in apps]})

    @extend_schema(operation_id="apps_create", summary="Create an app (admin scope); its credentials are shown once",
                   request={"application/json": s.APP_CREATE}, responses=s.created(s.APP_WITH_CREDENTIALS))  # fmt: skip
    def post(self, request, org_id: str):
        return admin_actions.create_app(self, request, self.organization(org_id))


class AppDetail(ApiView):
    scopes = {"GET": "read", "PATCH": "admin"}

    @extend_schema(operation_id="app_get", summary="One app", responses=s.ok(s.APP))
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        return Response(app_json(app, last_received_at=stats.last_received_at([app.pk]).get(app.pk)))

    @extend_schema(operation_id="app_update", summary="Rename, disable or enable an app (admin scope)",
                   request={"application/json": s.APP_UPDATE}, responses=s.ok(s.APP))  # fmt: skip
    def patch(self, request, org_id: str, app_id: str):
        return admin_actions.update_app(self, request, self.app(org_id, app_id))


# --- Analytics of an organization or an app ----------------------------------------------


class _Analytics(ApiView):
    """Summary, time series, breakdowns and commands read the same whether the scope is one
    app or the whole organization, as the dashboard's overview pages do (dashboard/views.py)."""

    level = "app"

    def app_ids(self, kwargs) -> tuple[list[int], list[App]]:
        if self.level == "org":
            apps = list(self.organization(kwargs["org_id"]).apps.all())
        else:
            apps = [self.app(kwargs["org_id"], kwargs["app_id"])]
        return [app.pk for app in apps], apps

    def get(self, request, **kwargs):
        app_ids, apps = self.app_ids(kwargs)
        state = page_state(request, app_ids)
        filters = state.filters
        reads = filtered_stats.Reads(app_ids, filters) if filters.active else None
        return Response({**range_json(state), **self.figures(app_ids, apps, state, filters, reads)})


class Summary(_Analytics):
    def figures(self, app_ids, apps, state, filters, reads):
        period = state.period
        if filters.active:
            summary = filtered_stats.summary(app_ids, period=period, filters=filters, reads=reads)
        else:
            summary = stats.summary(app_ids, period=period)
        out = {
            "summary": to_json(summary),
            "has_events": summary.events.current > 0 or stats.has_events(app_ids),
            "last_event_at": to_json(stats.last_event_at(app_ids)),
        }
        if self.level == "org":
            if not apps:
                activity_rows = []
            elif filters.active:
                activity_rows = filtered_stats.app_activity(apps, period=period, filters=filters)
            else:
                activity_rows = stats.app_activity(apps, period=period)
            out["apps"] = to_json(activity_rows)
        return out


class TimeSeries(_Analytics):
    def figures(self, app_ids, apps, state, filters, reads):
        if filters.active:
            buckets = filtered_stats.events_over_time(app_ids, period=state.period, filters=filters, reads=reads)
        else:
            buckets = stats.events_over_time(app_ids, period=state.period)
        return {"buckets": to_json(buckets)}


class Breakdowns(_Analytics):
    def figures(self, app_ids, apps, state, filters, reads):
        if filters.active:
            found = filtered_stats.breakdowns(app_ids, period=state.period, filters=filters, reads=reads)
        else:
            found = stats.breakdowns(app_ids, period=state.period)
        return {"breakdowns": to_json(found)}


class Commands(_Analytics):
    def figures(self, app_ids, apps, state, filters, reads):
        period = state.period
        if filters.active:
            figures = filtered_stats.command_stats(app_ids, period=period, filters=filters, reads=reads)
            top = filtered_stats.top_commands(app_ids, period=period, filters=filters, reads=reads) if figures.runs else []
        else:
            figures = stats.command_stats(app_ids, period=period)
            top = stats.top_commands(app_ids, period=period) if figures.runs else []
        return {"commands": to_json(figures), "top": to_json(top)}


def _analytics_view(cls, level: str, operation: str, summary: str, body: dict):
    def get(self, request, **kwargs):  # a function of its own per view, for its own schema
        return cls.get(self, request, **kwargs)

    get = extend_schema(
        operation_id=f"{level}_{operation}", summary=summary, parameters=ANALYTICS_PARAMETERS,
        responses=s.ok(s.analytics(**body)),
    )(get)  # fmt: skip
    return type(f"{'Org' if level == 'org' else 'App'}{cls.__name__}", (cls,), {"level": level, "get": get})


ORG_SUMMARY = _analytics_view(Summary, "org", "summary", "Events, users and sessions of every app, and per app", s.SUMMARY_ORG)
ORG_TIMESERIES = _analytics_view(TimeSeries, "org", "timeseries", "Events per UTC hour or day, every app", s.TIMESERIES)
ORG_BREAKDOWNS = _analytics_view(Breakdowns, "org", "breakdowns", "The most frequent values per dimension, every app", s.BREAKDOWNS)
ORG_COMMANDS = _analytics_view(Commands, "org", "commands", "Command runs, outcomes and durations, every app", s.COMMANDS)
APP_SUMMARY = _analytics_view(Summary, "app", "summary", "Events, users and sessions", s.SUMMARY)
APP_TIMESERIES = _analytics_view(TimeSeries, "app", "timeseries", "Events per UTC hour or day", s.TIMESERIES)
APP_BREAKDOWNS = _analytics_view(Breakdowns, "app", "breakdowns", "The most frequent values per dimension", s.BREAKDOWNS)
APP_COMMANDS = _analytics_view(Commands, "app", "commands", "Command runs, outcomes and durations", s.COMMANDS)


# --- Insights of an app ------------------------------------------------------------------------


class Releases(ApiView):
    @extend_schema(
        operation_id="app_releases", summary="Users per version per day, the versions, rollout, users on old versions",
        parameters=[*ANALYTICS_PARAMETERS, OpenApiParameter("behind", OpenApiTypes.INT,
                    description=f"Old means more than this many releases behind (0–{MAX_BEHIND}, default {releases.DEFAULT_BEHIND}).")],
        responses=s.ok(s.analytics(**s.RELEASES)),
    )  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        behind = _int_param(request, "behind", releases.DEFAULT_BEHIND, 0, MAX_BEHIND)
        app_ids = [app.pk]
        state = page_state(request, app_ids)
        today = timezone.now().astimezone(UTC).date()
        out = {**range_json(state), "has_events": stats.has_events(app_ids),
               "users": None, "versions": None, "rollout": None, "old": None}  # fmt: skip
        if out["has_events"]:
            filters, version = state.filters, state.filters.version
            history = releases.history(app_ids, filters=filters, today=today)
            week = releases.window(app_ids, filters=filters, today=today)
            out.update(
                users=to_json(releases.daily_users(history, period=state.period, version=version)),
                versions=to_json(releases.version_table(app_ids, history, week, period=state.period, filters=filters)),
                rollout=to_json(releases.rollout(history, version=version)),
                old=to_json(releases.old_versions(history, week, limit=behind, version=version)),
            )
        return Response(out)


class ReleaseHealth(ApiView):
    @extend_schema(operation_id="app_release_health", summary="Each version's commands: runs, failures, durations, regressions",
                   parameters=ANALYTICS_PARAMETERS, responses=s.ok(s.analytics(**s.HEALTH)))  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        state = page_state(request, [app.pk])
        report = health.release_health([app.pk], period=state.period, filters=state.filters)
        return Response({**range_json(state), "health": to_json(report)})


class CommandHealth(ApiView):
    @extend_schema(
        operation_id="app_command_health", summary="One command: runs over time, by version, by platform, exit codes, flags",
        parameters=[*ANALYTICS_PARAMETERS, OpenApiParameter("command", OpenApiTypes.STR, required=True,
                    description="The command's name as `data.command` holds it; `(none)` for runs without one.")],
        responses=s.ok(s.analytics(**s.COMMAND_HEALTH)),
    )  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        text = request.query_params.get("command")
        if not text:
            raise ApiError(400, "invalid_request", "command: name the command.")
        name = health.command_name(text)
        state = page_state(request, [app.pk])
        detail = None if name is None else health.command_detail([app.pk], period=state.period, filters=state.filters, command=name)
        return Response({**range_json(state), "command": name if name is not None else text, "detail": to_json(detail)})


class Retention(ApiView):
    @extend_schema(operation_id="app_retention", summary="Active users, stickiness, new and returning users, cohorts",
                   parameters=ANALYTICS_PARAMETERS, responses=s.ok(s.analytics(**s.RETENTION)))  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        state = page_state(request, [app.pk])
        period, today = state.period, timezone.now().astimezone(UTC).date()
        # Per UTC day: every day the range touches, as the Retention page counts (dashboard/activity_views.py).
        first, last = period.start.date(), (period.end - timedelta(microseconds=1)).date()
        figures = None
        if stats.has_events([app.pk]):
            figures = activity.retention([app.pk], first, last, filters=state.filters, today=today)
        return Response({**range_json(state), "retention": to_json(figures)})


class Platforms(ApiView):
    @extend_schema(operation_id="app_platforms", summary="Every OS × architecture with users, events, runs, failures, OS versions",
                   parameters=ANALYTICS_PARAMETERS, responses=s.ok(s.analytics(**s.PLATFORMS)))  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        state = page_state(request, [app.pk])
        found = platforms.platforms([app.pk], period=state.period, filters=state.filters)
        return Response({**range_json(state), "platforms": to_json(found)})


class Properties(ApiView):
    @extend_schema(
        operation_id="app_properties", summary="The keys of events' data per event type, and one key's figures",
        parameters=[*ANALYTICS_PARAMETERS,
                    OpenApiParameter("type", OpenApiTypes.STR, description="Event type (default: the most frequent)."),
                    OpenApiParameter("key", OpenApiTypes.STR, description="A key of its data (`a.b` one level down)."),
                    OpenApiParameter("split", OpenApiTypes.STR, description="A string key to split a number key's figures by.")],
        responses=s.ok(s.analytics(**s.PROPERTIES)),
    )  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        state = page_state(request, [app.pk])
        query = request.query_params
        report = properties.report(
            app.pk, state.period, state.filters, event_type=query.get("type"), key=query.get("key"),
            split=query.get("split"), now=timezone.now(),
        )  # fmt: skip
        return Response({**range_json(state), "properties": to_json(report)})


def funnel_json(funnel: Funnel) -> dict:
    return {
        "id": funnel.pk,
        "name": funnel.name,
        "steps": to_json(funnels.steps_of(funnel.steps)),
        "window_seconds": funnel.window_seconds,
    }


class FunnelList(ApiView):
    @extend_schema(operation_id="app_funnels", summary="The app's saved funnels",
                   responses=s.ok(s.obj(funnels=s.array(s.FUNNEL))))  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        return Response({"funnels": [funnel_json(funnel) for funnel in Funnel.objects.filter(app=app)]})


class FunnelDetail(ApiView):
    @extend_schema(operation_id="app_funnel", summary="One funnel's users per step, conversions and median times",
                   parameters=ANALYTICS_PARAMETERS, responses=s.ok(s.analytics(**s.FUNNEL_RESULT)))  # fmt: skip
    def get(self, request, org_id: str, app_id: str, funnel_id: int):
        app = self.app(org_id, app_id)
        funnel = Funnel.objects.filter(app=app, pk=funnel_id).first() if possible_pk(funnel_id) else None
        if funnel is None:
            raise not_found("No such funnel in this application.")
        state = page_state(request, [app.pk])
        result = funnels.compute(
            app.pk, funnels.steps_of(funnel.steps), window=funnel.window,
            start=state.period.start, end=state.period.end, filters=state.filters,
        )  # fmt: skip
        return Response({**range_json(state), "funnel": funnel_json(funnel), "result": to_json(result)})


def _int_param(request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "invalid_request", f"{name}: a whole number from {low} to {high}.") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_request", f"{name}: a whole number from {low} to {high}.")
    return value

