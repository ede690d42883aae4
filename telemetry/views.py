"""Ingest endpoints and health probes. Views parse, call one domain function, shape the answer."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from config import logs
from telemetry import ingest, limits, metrics, scheduler, storage
from telemetry.auth import SignatureAuthentication, TokenAndSignatureAuthentication
from telemetry.errors import IngestError

logger = logging.getLogger(__name__)
STARTED_AT = time.time()


class AlwaysJSON(BaseContentNegotiation):
    """The SDK sends `Accept: */*` and decodes JSON; answer JSON whatever Accept says."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DoNotTrack(IngestError):
    def __init__(self):
        super().__init__(204, "do_not_track", "")

    def response(self) -> Response:
        return Response(status=204)


class IngestView(APIView):
    """POST /v1/ingest/{org_id}/{app_id}: the SDK's endpoint (docs/protocol.md, Endpoints)."""

    authentication_classes = [SignatureAuthentication]
    permission_classes = []
    content_negotiation_class = AlwaysJSON

    def dispatch(self, request, *args, **kwargs):
        # Every answer of the endpoint, refusals and outages included, is counted
        # and its summary added to the request's log line here, in one place.
        started = time.perf_counter()
        self.ingest_app = None
        response = None
        try:
            response = super().dispatch(request, *args, **kwargs)
            return response
        finally:
            seconds = time.perf_counter() - started
            logs.bind(**metrics.observe_ingest(response, app=self.ingest_app, seconds=seconds))

    def initial(self, request, *args, **kwargs):
        if request.method != "POST":
            raise MethodNotAllowed(request.method)
        # DNT: 1 means store nothing; answer before reading or checking anything.
        if request.headers.get("DNT", "").strip() == "1":
            raise DoNotTrack()
        super().initial(request, *args, **kwargs)
        app = self.ingest_app = request.auth  # authenticate now, before the handler runs
        # Counted only once authenticated, so forged or replayed requests spend nothing.
        request.clacks_rate = limits.enforce_rate(app.pk, tier=app.tier)

    def finalize_response(self, request, response, *args, **kwargs):
        rate = getattr(request, "clacks_rate", None)
        if rate is not None:  # every answer once the app is known (docs/protocol.md, Rate limits)
            for name, value in rate.headers().items():
                response[name] = value
        return super().finalize_response(request, response, *args, **kwargs)

    def post(self, request, *args, **kwargs) -> Response:
        app = request.auth
        events = ingest.parse_batch(request.clacks_body, declared_size=request.headers.get("X-Batch-Size"))
        with limits.event_quota(app.org_pk, tier=app.tier, events=len(events)) as quota:
            result = ingest.ingest_events(app.pk, events, now=timezone.now())
            quota.record_stored(result.accepted - result.duplicates)
        if result.errors:
            return Response(
                {
                    "status": "partial",
                    "accepted": result.accepted,
                    "rejected": len(result.errors),
                    "duplicates": result.duplicates,
                    "message": f"{result.accepted} events accepted, {len(result.errors)} rejected.",
                    "errors": result.errors,
                },
                status=207,
            )
        return Response(
            {
                "status": "success",
                "accepted": result.accepted,
                "rejected": 0,
                "duplicates": result.duplicates,
                # The SDK fails to decode a success body without a message.
                "message": f"{result.accepted} events accepted.",
            }
        )


class BatchView(IngestView):
    """POST /v1/events/batch: the self-hosting guide's endpoint; the bearer token names the app."""

    authentication_classes = [TokenAndSignatureAuthentication]


# --- Probes -------------------------------------------------------------------------


def _pending_migrations() -> int:
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _connection_settings() -> dict:
    config = settings.DATABASES["default"]
    return {
        "conn_max_age": config.get("CONN_MAX_AGE"),
        "conn_health_checks": config.get("CONN_HEALTH_CHECKS"),
        "connect_timeout_s": config.get("OPTIONS", {}).get("connect_timeout"),
        "statement_timeout_ms": settings.CLACKS_DB_STATEMENT_TIMEOUT_MS or None,
    }


def _database_check() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        pending = _pending_migrations()
    except DatabaseError as exc:
        return {
            "status": "down",
            "vendor": connection.vendor,
            "error": exc.__class__.__name__,
            "connection": _connection_settings(),
        }
    return {
        "status": "up",
        "vendor": connection.vendor,
        "latency_ms": latency_ms,  # one SELECT 1 round trip, connecting included if it had to
        "pending_migrations": pending,
        "connection": _connection_settings(),
    }


def _redis_check() -> dict | None:
    """One PING to the Redis of REDIS_URL, which holds the nonces and counters; None without one."""
    if settings.CLACKS_SHARED_STORE != "redis":
        return None
    from django_redis import get_redis_connection

    started = time.perf_counter()
    try:
        get_redis_connection("default").ping()
    except RedisError as exc:
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _stores() -> dict:
    """Where replay nonces and rate and quota counters live (telemetry.auth, telemetry.limits)."""
    return {"nonces": settings.CLACKS_SHARED_STORE, "rate_limits": settings.CLACKS_SHARED_STORE}


def _jobs() -> dict | None:
    """Each background job's last run; None when its table cannot be read (pending migration)."""
    try:
        states = scheduler.job_states()
    except DatabaseError:
        return None
    return {
        state.name: {
            "period_seconds": int(state.period.total_seconds()),
            "last_started_at": state.last_started_at,
            "last_finished_at": state.last_finished_at,
            "last_succeeded_at": state.last_succeeded_at,
            "last_ok": state.last_ok,
            "running": state.running,
            "overdue": state.overdue,
        }
        for state in states
    }


def _rollup_backlog() -> dict | None:
    """Rollup deltas waiting for the fold, and how old the oldest is (docs/storage.md, Rollups)."""
    try:
        pending, oldest = storage.unfolded_deltas()
    except DatabaseError:
        return None
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {"pending_deltas": pending, "oldest_delta_seconds": round(max(age, 0.0), 1)}


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_check()}
    redis = _redis_check()
    if redis is not None:
        checks["redis"] = redis
    healthy = all(check["status"] == "up" for check in checks.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "version": settings.CLACKS_VERSION,
        "uptime_seconds": int(time.time() - STARTED_AT),
        "stores": _stores(),
        "checks": checks,
        # Reported, never a reason for 503: a late job does not stop ingest.
        "jobs": _jobs() if healthy else None,
        "rollups": _rollup_backlog() if healthy else None,
    }
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    # Ingest refuses every request while either store is away: so should this.
    database = _database_check()
    if database["status"] != "up":
        return JsonResponse({"status": "not_ready", "reason": "database unreachable"}, status=503)
    redis = _redis_check()
    if redis is not None and redis["status"] != "up":
        return JsonResponse({"status": "not_ready", "reason": "redis unreachable"}, status=503)
    if database["pending_migrations"]:
        return JsonResponse(
            {"status": "not_ready", "reason": f"{database['pending_migrations']} migrations pending"}, status=503
        )
    return JsonResponse({"status": "ready"})
