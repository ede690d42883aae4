"""Middleware and error pages that apply to every response of the server."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import resolve
from django.views import defaults

from config import logs

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("clacks.request")

# An incoming X-Request-ID is kept when it looks like an id (a UUID, a load
# balancer's trace id such as AWS's "Root=1-..."); anything else is replaced,
# so a client cannot put arbitrary text into headers and log lines.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}\Z")

# Paths that carry a bearer secret: a share link's token (docs/sharing.md), an
# invitation's and a password-reset link's (docs/accounts.md). Request log lines
# keep the first 6 characters of the token, which the pages that list them show,
# and no more.
_PATH_SECRET = re.compile(r"^(/s/|/invite/|/accounts/password/reset/[^/]*/)([^/]{0,6})[^/]*")


# Answered before host validation and the HTTPS redirect: load balancers,
# Docker's HEALTHCHECK and Prometheus call an instance by its address over
# plain HTTP, with a Host header that ALLOWED_HOSTS rightly does not list.
# None of these views builds a URL from the Host header.
PROBE_PATHS = frozenset({"/live", "/ready", "/health", "/metrics"})


def clacks_overhead(get_response: Callable[[HttpRequest], HttpResponse]):
    """Add `X-Clacks-Overhead` to every response (docs/protocol.md, X-Clacks-Overhead)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Clacks-Overhead"] = "GNU Terry Pratchett"
        return response

    return middleware


def request_log(get_response: Callable[[HttpRequest], HttpResponse]):
    """Give each request an id (kept from X-Request-ID or new), return it in
    X-Request-ID, and log one JSON line when the answer is ready."""

    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = logs.open_request(request_id)
        try:
            response = get_response(request)
        finally:
            fields = logs.close_request(token)
        response["X-Request-ID"] = request_id
        status = response.status_code
        fields.update(
            method=request.method,
            path=_PATH_SECRET.sub(r"\1\2…", request.path[:1000]),
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            db_ms=round(fields["db_ms"], 2),
        )
        level = logging.WARNING if status >= 500 else logging.INFO
        request_logger.log(level, "%s %s %s", request.method, fields["path"], status, extra=fields)
        return response

    return middleware


def probes(get_response: Callable[[HttpRequest], HttpResponse]):
    """Serve /live, /ready, /health and /metrics before host and HTTPS checks (see PROBE_PATHS)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path_info in PROBE_PATHS:
            match = resolve(request.path_info)
            return match.func(request, *match.args, **match.kwargs)
        return get_response(request)

    return middleware


# --- The database is away ----------------------------------------------------------


def database_unavailable() -> HttpResponse:
    """The friendly 503 page. Rendered without the request, so that no context
    processor (the user, their organizations) goes back to the database."""
    retry_after = settings.CLACKS_RETRY_AFTER_SECONDS
    response = HttpResponse(render_to_string("503.html", {"retry_after": retry_after}), status=503)
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Pages answer the friendly 503 while the database cannot be reached.

    The ingest API shapes its own 503 (telemetry.errors); this covers every
    other view. It logs a warning, not a traceback: an outage is not a bug,
    and recovery needs no restart (CONN_HEALTH_CHECKS replaces dead connections)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.warning("database unavailable: %s", exception.__class__.__name__)
            return database_unavailable()
        return None


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the 503 page when the error in flight is the database being
    away outside a view (a middleware saving the session), else 500.html."""
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return database_unavailable()
    return defaults.server_error(request)
