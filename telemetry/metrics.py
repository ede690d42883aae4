"""Ingest metrics for Prometheus, and the protected /metrics export.

Names follow Prometheus conventions (base units, `_total` on counters).
Labels are bounded: HTTP statuses and error codes the server itself
produces. Per-app labels are added only when CLACKS_METRICS_PER_APP is set,
and only to counters that are reached after a request was authenticated, so
a stranger cannot mint new series by inventing app ids.

Under gunicorn every worker writes its values to PROMETHEUS_MULTIPROC_DIR
(set by config/gunicorn.py) and /metrics sums them across workers, living
and dead, so counters survive worker restarts.
"""

from __future__ import annotations

import fcntl
import hmac
import ipaddress
from collections import Counter as Tally
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView
from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import Counter, Gauge, Histogram

_PER_APP = ["app"] if settings.CLACKS_METRICS_PER_APP else []

EVENTS_ACCEPTED = Counter(
    "clacks_ingest_events_accepted_total",
    "Events accepted by ingest, duplicates included (the `accepted` of responses).",
    _PER_APP,
)
EVENTS_DUPLICATE = Counter(
    "clacks_ingest_events_duplicate_total",
    "Accepted events whose event_id the app already had, so not stored again.",
    _PER_APP,
)
EVENTS_REJECTED = Counter(
    "clacks_ingest_events_rejected_total",
    "Events rejected one by one, by error code (docs/protocol.md, Per-event rules).",
    ["reason", *_PER_APP],
)
BATCHES = Counter(
    "clacks_ingest_batches_total",
    "Ingest requests by HTTP status of the answer.",
    ["status"],
)
BATCH_SIZE = Histogram(
    "clacks_ingest_batch_size_events",
    "Events per batch that was parsed and judged (answers 200, 207 and 400 all_events_rejected).",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
INGEST_DURATION = Histogram(
    "clacks_ingest_duration_seconds",
    "Time to answer an ingest request, authentication and storage included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUTH_FAILURES = Counter(
    "clacks_ingest_auth_failures_total",
    "Ingest requests refused by authentication (401, 403, 409), by error code.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "clacks_ingest_rate_limited_total",
    "Ingest requests refused with 429, by error code (rate limit or monthly quota).",
    ["reason"],
)
SLOW_QUERIES = Counter(
    "clacks_db_slow_queries_total",
    "Database queries that took longer than CLACKS_SLOW_QUERY_MS.",
)

_AUTH_STATUSES = frozenset({401, 403, 409})


def _series(metric, labels: dict):
    # prometheus_client refuses .labels() on a metric declared without labels.
    return metric.labels(**labels) if labels else metric


def observe_ingest(outcome, *, seconds: float) -> dict[str, Any]:
    """Count one answered ingest request from its outcome (telemetry.views.IngestOutcome);
    returns the fields its log line should carry. Every path out of the view
    (success, partial, refusal, outage, a bug's 500) is counted the same way."""
    status, app, error, result = outcome.status, outcome.app, outcome.error, outcome.result
    BATCHES.labels(status=str(status)).inc()
    INGEST_DURATION.observe(seconds)
    fields: dict[str, Any] = {}
    if app is not None:
        fields.update(org=app.org_public_id, app=app.public_id)
    # Event counts only exist once the app is known, so the app label always has a value.
    app_label = {"app": app.public_id} if _PER_APP and app is not None else {}

    if error is not None and status != 500:
        fields["error"] = error.code
        if status in _AUTH_STATUSES:
            AUTH_FAILURES.labels(reason=error.code).inc()
        elif status == 429:
            RATE_LIMITED.labels(reason=error.code).inc()

    if result is not None:
        accepted, duplicates, rejections = result.accepted, result.duplicates, result.errors
    elif error is not None and error.errors is not None:  # every event of the batch rejected
        accepted, duplicates, rejections = 0, 0, error.errors
    else:
        return fields
    if app is None and _PER_APP:
        return fields
    BATCH_SIZE.observe(accepted + len(rejections))
    fields.update(
        batch_size=accepted + len(rejections), accepted=accepted, rejected=len(rejections), duplicates=duplicates
    )
    if accepted:
        _series(EVENTS_ACCEPTED, app_label).inc(accepted)
    if duplicates:
        _series(EVENTS_DUPLICATE, app_label).inc(duplicates)
    for reason, count in Tally(item.get("error", "unknown") for item in rejections).items():
        EVENTS_REJECTED.labels(reason=reason, **app_label).inc(count)
    return fields


# --- /metrics ------------------------------------------------------------------------


def _client_allowed(request: HttpRequest) -> bool:
    networks = settings.CLACKS_METRICS_ALLOWED_IPS
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in networks)


def _token_matches(request: HttpRequest) -> bool:
    expected = settings.CLACKS_METRICS_TOKEN
    if not expected:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


# Read from the database when /metrics is scraped; under gunicorn the newest
# value written by any worker is the one exported.
ROLLUP_DELTAS_PENDING = Gauge(
    "clacks_rollup_deltas_pending",
    "Rollup delta rows appended by ingest and deletions and not folded into the hourly rollups yet.",
    multiprocess_mode="mostrecent",
)
ROLLUP_FOLD_LAG = Gauge(
    "clacks_rollup_fold_lag_seconds",
    "Age of the oldest rollup delta not folded yet (0 when none wait); the fold runs every 2 s.",
    multiprocess_mode="mostrecent",
)


def _observe_storage() -> None:
    from telemetry import storage

    try:
        pending, oldest = storage.unfolded_deltas()
    except DatabaseError:
        return  # the database check of /health says why; the other metrics still export
    ROLLUP_DELTAS_PENDING.set(pending)
    ROLLUP_FOLD_LAG.set(max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0)


SCHEDULER_JOB_LAG = Gauge(
    "clacks_scheduler_job_lag_seconds",
    "How long past its period each background job's last success is (0 while on time).",
    ["job"],
    multiprocess_mode="mostrecent",
)
SCHEDULER_JOB_OVERDUE = Gauge(
    "clacks_scheduler_job_overdue",
    "1 when a job has not succeeded for its period plus grace (as /health's jobs say), else 0.",
    ["job"],
    multiprocess_mode="mostrecent",
)


def _observe_jobs() -> None:
    from telemetry import scheduler

    now = timezone.now()
    try:
        states = scheduler.job_states(now=now)
    except DatabaseError:
        return
    for state in states:
        due = state.last_succeeded_at + state.period if state.last_succeeded_at else None
        SCHEDULER_JOB_LAG.labels(job=state.name).set(max((now - due).total_seconds(), 0.0) if due else 0.0)
        SCHEDULER_JOB_OVERDUE.labels(job=state.name).set(1 if state.overdue else 0)


# Functions that set gauges of apps telemetry may not import (alerts' notifications),
# run on each scrape beside _observe_storage; added from their AppConfig.ready().
SCRAPE_OBSERVERS: list = []


def add_scrape_observer(observe) -> None:
    """Call `observe()` (no arguments; it sets its gauges) whenever /metrics is scraped."""
    if observe not in SCRAPE_OBSERVERS:
        SCRAPE_OBSERVERS.append(observe)


@require_GET
def export(request: HttpRequest) -> HttpResponse:
    """GET /metrics: django-prometheus' export (summed over gunicorn workers when
    PROMETHEUS_MULTIPROC_DIR is set), behind the optional token and allow-list."""
    if not _client_allowed(request):
        return JsonResponse({"error": {"code": "forbidden", "message": "Not allowed from this address."}}, status=403)
    if not _token_matches(request):
        response = JsonResponse(
            {"error": {"code": "unauthorized", "message": "Authorization: Bearer <metrics token> is required."}},
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    _observe_storage()
    _observe_jobs()
    for observe in SCRAPE_OBSERVERS:
        observe()
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return ExportToDjangoView(request)
    # Shared with config/gunicorn.py's fold of a dead worker's files into the archive.
    with open(Path(settings.PROMETHEUS_MULTIPROC_DIR) / "fold.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        return ExportToDjangoView(request)
