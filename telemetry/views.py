"""Ingest endpoints and health probes. Views parse, call one domain function, shape the answer."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from config import logs
from organizations import endpoints
from telemetry import auth, databases, ingest, limits, metrics, replicas, scheduler, storage
from telemetry.errors import IngestError, as_ingest_error

logger = logging.getLogger(__name__)
STARTED_AT = time.time()


class AlwaysJSON(BaseContentNegotiation):
    """The SDK sends `Accept: */*` and decodes JSON; answer JSON whatever Accept says."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@dataclass
class IngestOutcome:
    """What became of one ingest request: what its answer and its metrics are made from."""

    app: auth.IngestApp | None = None  # once authenticated
    rate: limits.RateStatus | None = None  # once counted
    result: ingest.IngestResult | None = None  # once stored
    error: IngestError | None = None  # when refused

    @property
    def status(self) -> int:
        if self.error is not None:
            return self.error.status
        return self.result.status if self.result is not None else 204

    def response(self) -> Response:
        if self.error is not None:
            response = self.error.response()
        elif self.result is not None:
            response = Response(self.result.body(), status=self.result.status)
        else:
            response = Response(status=204)
        if self.rate is not None:  # every answer once the request was counted (docs/protocol.md, Rate limits)
            for name, value in self.rate.headers().items():
                response[name] = value
        return response


class IngestView(APIView):
    """POST /v1/ingest/{org_id}/{app_id}: the SDK's endpoint (docs/protocol.md, Endpoints).

    `ingest` reads top to bottom: Do Not Track, authenticate, count against the
    rate limit, parse, store within the quota. Every way out of it, refusals
    and outages included, is an IngestOutcome, counted and logged in one place."""

    authentication_classes = []  # ingest authenticates itself, in order (auth.authenticate)
    permission_classes = []
    content_negotiation_class = AlwaysJSON

    def find_app(self, request, **kwargs):
        return auth.app_from_path(kwargs["org_id"], kwargs["app_id"])

    def post(self, request, *args, **kwargs) -> Response:
        started = time.perf_counter()
        outcome = IngestOutcome()
        try:
            self.ingest(request, outcome, find_app=self.find_app(request, **kwargs))
        except Exception as exc:
            outcome.error = as_ingest_error(exc, where=type(self).__name__)
            if outcome.error is None:
                outcome.error = IngestError(500, "internal_error", "")  # for the metrics only
                raise  # a bug: Django logs it and answers 500
        finally:
            logs.bind(**metrics.observe_ingest(outcome, seconds=time.perf_counter() - started))
        return outcome.response()

    @staticmethod
    def ingest(request, outcome: IngestOutcome, *, find_app) -> None:
        # DNT: 1 means store nothing: answer 204 before reading or checking anything.
        if request.headers.get("DNT", "").strip() == "1":
            return
        raw, body = auth.read_body(request)
        app = outcome.app = auth.authenticate(request, raw=raw, body=body, find_app=find_app)
        # Counted only once authenticated, so forged or replayed requests spend nothing.
        outcome.rate = limits.enforce_rate(app.pk, tier=app.tier)
        events = ingest.parse_batch(body, declared_size=request.headers.get("X-Batch-Size"))
        with limits.event_quota(app.org_pk, tier=app.tier, events=len(events)) as quota:
            outcome.result = ingest.ingest_events(app.pk, events, now=timezone.now())
            quota.record_stored(outcome.result.accepted - outcome.result.duplicates)


class BatchView(IngestView):
    """POST /v1/events/batch: the self-hosting guide's endpoint; the bearer token names the app."""

    def find_app(self, request, **kwargs):
        return auth.app_from_token(request)


# --- Probes -------------------------------------------------------------------------


def _pending_migrations(alias: str) -> int:
    executor = MigrationExecutor(connections[alias])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _connection_settings(alias: str) -> dict:
    config = settings.DATABASES[alias]
    return {
        "conn_max_age": config.get("CONN_MAX_AGE"),
        "conn_health_checks": config.get("CONN_HEALTH_CHECKS"),
        "connect_timeout_s": config.get("OPTIONS", {}).get("connect_timeout"),
        "statement_timeout_ms": settings.CLACKS_DB_STATEMENT_TIMEOUT_MS or None,
    }


def _database_check(alias: str = DEFAULT_DB_ALIAS) -> dict:
    connection = connections[alias]
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        pending = _pending_migrations(alias)
    except DatabaseError as exc:
        return {
            "status": "down",
            "vendor": connection.vendor,
            "error": exc.__class__.__name__,
            "connection": _connection_settings(alias),
        }
    return {
        "status": "up",
        "vendor": connection.vendor,
        "latency_ms": latency_ms,  # one SELECT 1 round trip, connecting included if it had to
        "pending_migrations": pending,
        "connection": _connection_settings(alias),
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


def _database_checks() -> dict:
    """DATABASE_URL's database, and EVENTS_DATABASE_URL's when events have their own."""
    checks = {"database": _database_check()}
    if databases.split():
        checks["events_database"] = _database_check(databases.EVENTS)
    return checks


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    checks = _database_checks()
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
        # The base URL the credentials page and snippets give clients, and whether it
        # matches how this probe reached the server (organizations.endpoints).
        "public_url": _public_url(request),
    }
    replica = replicas.state()
    if replica is not None:
        # Reported, never a reason for 503: without the replica the primary serves all reads.
        body["replica"] = replica.as_json()
    return JsonResponse(body, status=200 if healthy else 503)


def _public_url(request: HttpRequest) -> dict:
    configured = bool(endpoints.configured_public_url())
    try:
        request.get_host()
    except DisallowedHost:
        # Probes answer any Host (config/middleware.py, PROBE_PATHS); one ALLOWED_HOSTS
        # does not list is neither echoed nor compared.
        return {"url": endpoints.public_url(), "configured": configured}
    mismatch = endpoints.public_url_mismatch(request)
    answer = {"url": endpoints.public_url(request), "configured": configured}
    if mismatch is not None:
        answer["warning"] = (
            f"CLACKS_PUBLIC_URL is {mismatch.configured} but this request reached {mismatch.reached}; "
            "clients given the configured URL must be able to reach it."
        )
    return answer


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    # Ingest refuses every request while any store is away: so should this.
    checks = _database_checks()
    for name, check in checks.items():
        if check["status"] != "up":
            return JsonResponse({"status": "not_ready", "reason": f"{name.replace('_', ' ')} unreachable"}, status=503)
    redis = _redis_check()
    if redis is not None and redis["status"] != "up":
        return JsonResponse({"status": "not_ready", "reason": "redis unreachable"}, status=503)
    pending = sum(check["pending_migrations"] for check in checks.values())
    if pending:
        return JsonResponse({"status": "not_ready", "reason": f"{pending} migrations pending"}, status=503)
    return JsonResponse({"status": "ready"})
