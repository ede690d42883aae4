"""The REST API's one error shape, the ingest API's (docs/protocol.md, Error body):
{"error": {"code", "message", "details"?}}, plus "retry_after" at the top level
with a Retry-After header for 429 and 503."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response

from telemetry.errors import DRF_CODES, drf_status_code_message

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, details: str | None = None,
        retry_after: int | None = None, headers: dict | None = None,
    ):  # fmt: skip
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.retry_after, self.headers = details, retry_after, headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details  # a string, as the protocol's error body requires
        body: dict = {"error": error}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return body

    def apply(self, response):
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="clacks"'  # RFC 6750: a 401 names its scheme
        for name, value in self.headers.items():
            response[name] = value
        return response

    def response(self) -> Response:
        return self.apply(Response(self.body(), status=self.status))


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "not_found", message)


# The ingest API's codes, and the key authentication only the REST API has.
_DRF = {
    **DRF_CODES,
    exceptions.NotAuthenticated: (401, "missing_api_key"),
    exceptions.AuthenticationFailed: (401, "invalid_api_key"),
    exceptions.PermissionDenied: (403, "forbidden"),
}


def _flatten(detail, path: str = "") -> list[str]:
    """DRF's nested validation messages as "field: message" lines."""
    if isinstance(detail, dict):
        return [line for key, value in detail.items() for line in _flatten(value, f"{path}.{key}" if path else str(key))]
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, path)]
    return [f"{path}: {detail}" if path and path != "non_field_errors" else str(detail)]


def as_api_error(exc: Exception) -> ApiError | None:
    """The answer an expected failure gets; None for anything else (a logged 500, never hidden)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Http404):
        return not_found()
    if isinstance(exc, PermissionDenied):
        return ApiError(403, "forbidden", "This key may not do that.")
    if isinstance(exc, RequestDataTooBig):
        return ApiError(413, "payload_too_large", "The request body is too large.")
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("storage unavailable in the REST API: %s", exc.__class__.__name__)
        return ApiError(503, "storage_unavailable", "Storage is unavailable; try again shortly.",
                        retry_after=settings.CLACKS_RETRY_AFTER_SECONDS)  # fmt: skip
    if isinstance(exc, exceptions.ValidationError):
        lines = _flatten(exc.detail)
        return ApiError(400, "invalid_request", lines[0] if len(lines) == 1 else "The request has invalid fields.",
                        details="; ".join(lines))  # fmt: skip
    if isinstance(exc, exceptions.APIException):
        return ApiError(*drf_status_code_message(exc, _DRF))
    return None


def exception_handler(exc: Exception, context) -> Response | None:
    error = as_api_error(exc)
    return error.response() if error is not None else None


@csrf_exempt  # no session is read or written: a POST gets the same JSON 404, not CSRF's page
def json_not_found(request, *args, **kwargs) -> JsonResponse:
    """Any /api/v1/ path that names no endpoint: the API's 404, not the dashboard's page."""
    return JsonResponse(not_found("No such endpoint.").body(), status=404)
