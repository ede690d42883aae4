"""REST API v1: raw events (the `events` scope) and the streaming export (the `export` scope)."""

from __future__ import annotations

from dataclasses import replace

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from api import schema as s
from api.base import ApiView
from api.errors import ApiError, not_found
from api.params import FILTER_PARAMETERS, RANGE_PARAMETERS, page_state
from api.shapes import to_json
from dashboard import stats
from dashboard.forms import EventFilterForm
from telemetry import lifecycle
from telemetry.models import Event

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def event_json(event: Event) -> dict:
    """The event as the SDK sent it (dashboard.stats.event_document), with when it arrived."""
    return {**stats.event_document(event), "received_at": to_json(event.received_at)}


class EventList(ApiView):
    scopes = {"GET": "events"}

    @extend_schema(
        operation_id="app_events",
        summary="The app's events, newest first, a page at a time",
        description=(
            "Without a range every event is listed (as the dashboard's explorer does); with `range`"
            " (or `start`/`end`) only that range's. Pages follow the (timestamp, id) order: pass"
            " `next` back as `before` for older events, `previous` as `after` for newer ones."
        ),
        parameters=[
            OpenApiParameter("type", OpenApiTypes.STR, description="Event type, exactly."),
            OpenApiParameter("user", OpenApiTypes.STR, description="User id, exactly."),
            OpenApiParameter("session", OpenApiTypes.STR, description="Session id, exactly."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Events at or after this time (UTC)."),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Events before this time (UTC)."),
            *RANGE_PARAMETERS, *FILTER_PARAMETERS,
            OpenApiParameter("before", OpenApiTypes.STR, description="A `next` cursor: the page after it."),
            OpenApiParameter("after", OpenApiTypes.STR, description="A `previous` cursor: the page before it."),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"Events per page, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT})."),
        ],
        responses=s.ok(s.EVENT_PAGE),
    )  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        query = request.query_params
        form = EventFilterForm({name: query.get(name, "") for name in ("type", "user", "session", "since", "until")})
        if not form.is_valid():
            lines = [f"{name}: {m}" if name != "__all__" else m for name, ms in form.errors.items() for m in ms]
            raise ApiError(400, "invalid_request", lines[0], details="; ".join(lines))
        limit = _limit(query.get("limit"))
        state = page_state(request, [app.pk], figures=False)
        filters = replace(form.filters(), segment=state.filters)
        if any(query.get(name) for name in ("range", "start", "end")):
            period = state.period
            filters = replace(
                filters,
                start=max(filters.start, period.start) if filters.start else period.start,
                end=min(filters.end, period.end) if filters.end else period.end,
            )
        before = after = None
        if query.get("before"):
            before = stats.Cursor.decode(query["before"])
            if before is None:
                raise ApiError(400, "invalid_cursor", "before: not a cursor this API gave out.")
        elif query.get("after"):
            after = stats.Cursor.decode(query["after"])
            if after is None:
                raise ApiError(400, "invalid_cursor", "after: not a cursor this API gave out.")
        page = stats.recent_events(app.pk, filters=filters, before=before, after=after, limit=limit)
        return Response(
            {
                "events": [event_json(event) for event in _with_data(app.pk, page.events)],
                "next": page.older.encode() if page.older else None,
                "previous": page.newer.encode() if page.newer else None,
            }
        )


def _limit(text: str | None) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit: a whole number from 1 to {MAX_LIMIT}.")
    return int(text)


def _with_data(app_pk: int, events: list[Event]) -> list[Event]:
    """The page's events with their `data`, which the explorer's read leaves out: one more
    query over the page's own stretch of the (app, timestamp) index."""
    if not events:
        return events
    stamps = [event.timestamp for event in events]
    data = dict(
        Event.objects.filter(app_id=app_pk, timestamp__gte=min(stamps), timestamp__lte=max(stamps), pk__in=[e.pk for e in events])
        .values_list("pk", "data")
    )
    for event in events:
        event.data = data.get(event.pk)
    return events


class EventDetail(ApiView):
    scopes = {"GET": "events"}

    @extend_schema(operation_id="app_event", summary="One event by its event_id", responses=s.ok(s.EVENT))
    def get(self, request, org_id: str, app_id: str, event_id):
        app = self.app(org_id, app_id)
        event = stats.get_event(app.pk, event_id)
        if event is None:
            raise not_found("No such event in this application.")
        return Response(event_json(event))


class Export(ApiView):
    scopes = {"GET": "export"}

    @extend_schema(
        operation_id="app_export",
        summary="Every event of a range as CSV or JSON Lines, streamed",
        description="The export of README, \"Your data: export and erasure\": the same bytes as `manage.py export_events`. Audited as `events.export`.",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description="A UTC day (2026-11-01) or an RFC 3339 time; omit for the first event."),
            OpenApiParameter("to", OpenApiTypes.STR, description="A UTC day (included) or an RFC 3339 time (excluded); omit for the last event."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(lifecycle.EXPORT_FORMATS), description="Default jsonl."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, a header row first."),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="One event per line."),
            **s.errors(),
        },
    )  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        query = request.query_params
        name = query.get("format") or "jsonl"
        if name not in lifecycle.EXPORT_FORMATS:
            raise ApiError(400, "invalid_request", f"format: one of {', '.join(lifecycle.EXPORT_FORMATS)}.")
        try:
            time_range = lifecycle.parse_time_range(query.get("from"), query.get("to"))
        except lifecycle.LifecycleError as exc:
            raise ApiError(400, "invalid_range", str(exc).replace("--from", "from").replace("--to", "to")) from None
        export_format = lifecycle.EXPORT_FORMATS[name]
        lifecycle.record_export(app, time_range, export_format=export_format, by=request.auth, via="api")
        # A generator over pages of rows: the response never holds the whole export.
        response = StreamingHttpResponse(
            lifecycle.export_events(app, time_range, export_format=export_format), content_type=export_format.content_type
        )
        filename = lifecycle.export_filename(app, time_range, export_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
