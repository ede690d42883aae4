"""The one error type of the ingest API and the handler that shapes every error.

Error body (docs/protocol.md, Error body): {"error": {"code", "message"}}, with
"retry_after" at the top level for 429 and 503. The SDK cannot decode a flat
{"error": "..."}, so every path out of the API goes through here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class IngestError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        errors: list[dict] | None = None,
        extra: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict:
        body: dict = {"error": {"code": self.code, "message": self.message}}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self) -> Response:
        response = Response(self.body(), status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response["WWW-Authenticate"] = "HMAC-SHA256"  # RFC 9110: a 401 names its scheme
        for name, value in self.headers.items():
            response[name] = value
        return response


def storage_unavailable() -> IngestError:
    return IngestError(
        503,
        "storage_unavailable",
        "Storage is unavailable; keep the events and try again shortly.",
        retry_after=settings.CLACKS_RETRY_AFTER_SECONDS,
    )


# Keys put right take a person, not seconds.
SECRETS_RETRY_AFTER_SECONDS = 60


def secrets_unreadable() -> IngestError:
    """The app's HMAC secrets cannot be decrypted (organizations.crypto): the
    operator's keys must be put right, so the client keeps its events and retries."""
    return IngestError(
        503,
        "secrets_unreadable",
        "The server cannot read this application's credentials; keep the events and try again later.",
        retry_after=SECRETS_RETRY_AFTER_SECONDS,
    )


# DRF's own exceptions, named in the protocol's snake_case codes (the REST API adds
# its key authentication to these: api/errors.py).
DRF_CODES = {
    exceptions.ParseError: (400, "invalid_json"),
    exceptions.UnsupportedMediaType: (415, "unsupported_media_type"),
    exceptions.MethodNotAllowed: (405, "method_not_allowed"),
    exceptions.NotAcceptable: (406, "not_acceptable"),
    exceptions.NotFound: (404, "not_found"),
}


def as_ingest_error(exc: Exception, *, where: str) -> IngestError | None:
    """The answer an expected failure gets (`where` names the view, for the log);
    None for anything else, which must surface as a logged 500, not be hidden."""
    if isinstance(exc, IngestError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return too_large()
    # Redis holds the shared nonces and counters when REDIS_URL is set: its outage
    # is a storage outage too, and the client keeps its events and retries.
    if isinstance(exc, (OperationalError, InterfaceError, RedisError)):
        logger.warning("storage unavailable in %s: %s", where, exc.__class__.__name__)
        return storage_unavailable()
    if isinstance(exc, exceptions.APIException):
        return IngestError(*drf_status_code_message(exc))
    return None


def drf_status_code_message(exc: exceptions.APIException, codes: Mapping = DRF_CODES) -> tuple[int, str, str]:
    """One of DRF's exceptions as the error body's status, code and message; an
    exception `codes` does not name keeps its status, with the code `bad_request`."""
    status, code = codes.get(type(exc), (exc.status_code, "bad_request"))
    message = exc.detail if isinstance(exc.detail, str) else "The request could not be processed."
    return status, code, str(message)


def exception_handler(exc: Exception, context) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every expected failure in the SDK-decodable error body."""
    error = as_ingest_error(exc, where=type(context.get("view")).__name__)
    return error.response() if error is not None else None


def too_large() -> IngestError:
    limit = settings.CLACKS_MAX_BODY_BYTES
    return IngestError(413, "payload_too_large", f"The request body is larger than {limit} bytes.")
