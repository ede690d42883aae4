"""The base URL clients send events to, shown on pages, printed by commands and put in links.

CLACKS_PUBLIC_URL wins when it is set. Without it a page shows the address the
browser reached the server at (so `make serve PORT=9000` shows port 9000), and
code with no request (commands, notifications) uses http://127.0.0.1:$PORT,
the address `make serve` binds (README, "Quick start").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

_DEFAULT_PORTS = {"http": 80, "https": 443}


def public_url(request: HttpRequest | None = None) -> str:
    """The base URL without a trailing slash, e.g. "http://127.0.0.1:9000"."""
    if settings.CLACKS_PUBLIC_URL:
        return settings.CLACKS_PUBLIC_URL
    if request is not None:
        return reached_url(request)
    return f"http://127.0.0.1:{settings.PORT}"


def configured_public_url() -> str:
    """CLACKS_PUBLIC_URL, or "" when unset."""
    return settings.CLACKS_PUBLIC_URL


def reached_url(request: HttpRequest) -> str:
    """Scheme, host and port this request came in on (ALLOWED_HOSTS vetted the host)."""
    return request.build_absolute_uri("/").rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = (parts.scheme or "http").lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number: it can never match
        port = None
    return scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class Mismatch:
    configured: str
    reached: str


def public_url_mismatch(request: HttpRequest) -> Mismatch | None:
    """When CLACKS_PUBLIC_URL names another scheme, host or port than this request used.

    A path in CLACKS_PUBLIC_URL (a reverse proxy's prefix) is not compared."""
    configured = settings.CLACKS_PUBLIC_URL
    if not configured:
        return None
    reached = reached_url(request)
    if _origin(configured) == _origin(reached):
        return None
    return Mismatch(configured=configured, reached=reached)
