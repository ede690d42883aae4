"""Middleware that applies to every response of the server."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


def clacks_overhead(get_response: Callable[[HttpRequest], HttpResponse]):
    """Add `X-Clacks-Overhead` to every response (PROTOCOL.md, Responses)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Clacks-Overhead"] = "GNU Terry Pratchett"
        return response

    return middleware
