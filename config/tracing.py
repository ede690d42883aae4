"""OpenTelemetry traces of requests, exported over OTLP/HTTP (README, Tracing).

config/settings.py adds `middleware` below to MIDDLEWARE only when
OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise nothing imports this module or
OpenTelemetry, and a request costs nothing more.

Each request gives one trace: a server span for the request (its method and
route, status, and the request id of the log line and X-Request-ID), a child
span for the view, and a child of that for each SQL statement (its text,
never its parameters: they hold event payloads and token hashes). An
incoming `traceparent` header continues the caller's trace. Probes and
/metrics are not traced. Spans leave in batches from a thread of each
worker, started on the worker's first request (after gunicorn's fork).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from config.middleware import PROBE_PATHS

_tracer: trace.Tracer | None = None
_setup_lock = threading.Lock()


def traces_endpoint(base: str) -> str:
    """OTLP/HTTP's traces URL from the base endpoint (the variable's meaning in the OTLP spec)."""
    return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"


def tracer() -> trace.Tracer:
    """This process's tracer, made on first use (a provider of its own, not the global one)."""
    global _tracer
    if _tracer is None:
        with _setup_lock:
            if _tracer is None:
                resource = Resource.create(
                    {"service.name": settings.OTEL_SERVICE_NAME, "service.version": settings.CLACKS_VERSION}
                )
                provider = TracerProvider(resource=resource)
                exporter = OTLPSpanExporter(endpoint=traces_endpoint(settings.OTEL_EXPORTER_OTLP_ENDPOINT), timeout=5)
                provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
                _tracer = provider.get_tracer("clacks")
    return _tracer


def _trace_sql(execute: Callable, sql: str, params, many: bool, ctx: dict):
    """An execute wrapper: one client span per statement, under the view's span."""
    connection = ctx["connection"]
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "SQL"
    with tracer().start_as_current_span(f"{verb} {connection.alias}", kind=SpanKind.CLIENT) as span:
        span.set_attribute("db.system", connection.vendor)
        span.set_attribute("db.name", str(connection.settings_dict.get("NAME", "")))
        span.set_attribute("db.statement", " ".join(sql.split())[:2000])
        span.set_attribute("db.clacks.alias", connection.alias)
        if many:
            span.set_attribute("db.clacks.many", True)
        return execute(sql, params, many, ctx)


class middleware:
    """The request and view spans (placed right after config.middleware.request_log,
    so the request id exists)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in PROBE_PATHS:
            return self.get_response(request)
        parent = propagate.extract(request.headers)
        with tracer().start_as_current_span(request.method, context=parent, kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("url.path", request.path[:1000])
            span.set_attribute("clacks.request_id", getattr(request, "request_id", ""))
            with ExitStack() as stack:
                for alias in connections:
                    stack.enter_context(connections[alias].execute_wrapper(_trace_sql))
                try:
                    response = self.get_response(request)
                finally:
                    self._end_view(request)
            match = getattr(request, "resolver_match", None)
            if match is not None:
                if match.route and not match.route.startswith("^"):
                    span.update_name(f"{request.method} /{match.route}")
                    span.set_attribute("http.route", "/" + match.route)
                else:  # a re_path (ingest): its name reads better than its pattern
                    span.update_name(f"{request.method} {match.view_name}")
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> None:
        view = getattr(view_func, "view_class", view_func)  # a class-based view's class
        name = getattr(view, "__qualname__", None) or view.__class__.__name__
        module = getattr(view, "__module__", "")
        view_span = tracer().start_span(f"view {module}.{name}", kind=SpanKind.INTERNAL)
        view_span.set_attribute("clacks.request_id", getattr(request, "request_id", ""))
        request._clacks_view_span = (view_span, context.attach(trace.set_span_in_context(view_span)))

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        opened = getattr(request, "_clacks_view_span", None)
        if opened is not None:
            opened[0].record_exception(exception)
            opened[0].set_status(Status(StatusCode.ERROR))

    @staticmethod
    def _end_view(request: HttpRequest) -> None:
        opened = getattr(request, "_clacks_view_span", None)
        if opened is not None:
            view_span, token = opened
            context.detach(token)
            view_span.end()
            del request._clacks_view_span
