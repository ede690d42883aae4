"""JSON log lines, the per-request log context and the slow-query log.

Every record is one JSON object on one line (settings.LOGGING and gunicorn's
logconfig_dict both use JsonFormatter). While a request is served, every
record also carries its request id, so one grep finds everything a request
did. Nothing here logs headers, bodies or query parameters: signatures,
tokens and event payloads never reach a log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

logger = logging.getLogger(__name__)
slow_query_logger = logging.getLogger("clacks.db")

# The fields of the request being served in this thread, or None outside one.
# Middleware opens it; views and the query timer add to it.
_request_fields: ContextVar[dict[str, Any] | None] = ContextVar("clacks_request_fields", default=None)

# Attributes some libraries attach to records that must not be serialized:
# Django's django.request passes the request object itself (its repr holds the
# query string), and django.server passes the socket.
_NEVER_LOGGED = ("request", "server_time", "socket")


class JsonFormatter(OrjsonFormatter):
    """One JSON object per record: time, level, logger, message, then any extra fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *_NEVER_LOGGED])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_data, record, message_dict) -> None:
        super().add_fields(log_data, record, message_dict)
        fields = _request_fields.get()
        if fields is not None and "request_id" not in log_data:
            log_data["request_id"] = fields["request_id"]
        # Time first, then the extras: easier to read in a terminal.
        if "time" in log_data:
            moment = log_data.pop("time")
            rest = dict(log_data)
            log_data.clear()
            log_data["time"] = moment
            log_data.update(rest)


class TracebacksOnly(logging.Filter):
    """Keep records that carry a traceback (for django.request: unhandled errors, not
    the 4xx and 5xx answers the request log already has a line for)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is not None


class NoTracebackBelowError(logging.Filter):
    """A 4xx answer raised as an exception (403 PermissionDenied, 400 BadRequest) is an
    expected refusal: one WARNING line naming the path, without the traceback that
    Django attaches to it. Errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and record.exc_info:
            record.exc_info = None
            record.exc_text = None
        return True


# --- The request being served ------------------------------------------------------


def open_request(request_id: str) -> object:
    """Start collecting log fields for a request; returns a token for close_request."""
    return _request_fields.set({"request_id": request_id, "db_queries": 0, "db_ms": 0.0})


def close_request(token: object) -> dict[str, Any]:
    """The fields collected for the request, and the context reset."""
    fields = _request_fields.get() or {}
    _request_fields.reset(token)
    return fields


def bind(**fields: Any) -> None:
    """Add fields to the current request's log line (a no-op outside a request)."""
    current = _request_fields.get()
    if current is not None:
        current.update(fields)


# --- Query timing and the slow-query log ---------------------------------------------


def time_queries(execute: Callable, sql: str, params, many: bool, context: dict):
    """A database execute wrapper: adds each query's time to the request's log
    fields and logs queries slower than CLACKS_SLOW_QUERY_MS, with their SQL
    but never their parameters (they hold event payloads and token hashes)."""
    from django.conf import settings

    started = time.perf_counter()
    failed: str | None = None
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        failed = exc.__class__.__name__
        raise
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        fields = _request_fields.get()
        if fields is not None:
            fields["db_queries"] += 1
            fields["db_ms"] += elapsed_ms
        threshold = settings.CLACKS_SLOW_QUERY_MS
        if threshold and elapsed_ms >= threshold:
            _log_slow_query(sql, elapsed_ms, many=many, error=failed, alias=context["connection"].alias)


def _log_slow_query(sql: str, elapsed_ms: float, *, many: bool, error: str | None, alias: str) -> None:
    from telemetry import metrics

    metrics.SLOW_QUERIES.inc()
    # Whitespace folded so a multi-line statement reads as one line.
    extra = {"duration_ms": round(elapsed_ms, 1), "sql": " ".join(sql.split())[:2000], "many": many, "database": alias}
    if error:
        extra["error"] = error
    slow_query_logger.warning("slow query (%.0f ms)", elapsed_ms, extra=extra)


def install_query_timer(sender, connection, **kwargs) -> None:
    """connection_created receiver: wrap every query of every new connection."""
    if time_queries not in connection.execute_wrappers:
        connection.execute_wrappers.append(time_queries)
