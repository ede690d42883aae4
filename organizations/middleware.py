"""Account middleware: two-factor before any page, and the session list's "last seen".

Both act only for signed-in users; they run after django_otp's OTPMiddleware,
which gives request.user.is_verified() (settings.MIDDLEWARE).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse

from organizations import sessions, twofactor

# Reachable while the second step is pending: the step itself and signing out.
_VERIFY_OPEN = ("organizations:two_factor_verify", "organizations:logout")
# Reachable while enrolment is required: also the two-factor page and the password.
_ENROL_OPEN = (
    *_VERIFY_OPEN,
    "organizations:two_factor",
    "organizations:two_factor_start",
    "organizations:two_factor_qr",
    "organizations:two_factor_confirm",
    "organizations:password_change",
)


def _view_name(request: HttpRequest) -> str:
    """The URL name of the requested page ("organizations:logout"), or "" when none."""
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return ""


def _is_page_request(request: HttpRequest) -> bool:
    # Static files are served before this runs (whitenoise); the ingest API carries no session.
    return not request.path_info.startswith("/v1/")


# While the database is away these checks cannot run: the request goes on to the view,
# which meets the same error and answers the friendly 503 (config.middleware's
# DatabaseUnavailableMiddleware sees only errors raised in views).
_DATABASE_AWAY = (OperationalError, InterfaceError)


def two_factor(get_response: Callable[[HttpRequest], HttpResponse]):
    """A user with two-factor on must give a code before any other page (the Django
    admin included); a member of an organization that requires two-factor who has
    none is led to enrol first (docs/accounts.md)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if not _is_page_request(request):
            return get_response(request)
        try:
            user = getattr(request, "user", None)
            pending = user is not None and user.is_authenticated and not user.is_verified()
            enabled = pending and twofactor.is_enabled(user)
            must_enrol = pending and not enabled and twofactor.requires_enrolment(user)
        except _DATABASE_AWAY:
            enabled = must_enrol = False
        if enabled and _view_name(request) not in _VERIFY_OPEN:
            query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
            url = reverse("organizations:two_factor_verify")
            return redirect(f"{url}?{query}" if query else url)
        if must_enrol and _view_name(request) not in _ENROL_OPEN:
            messages.info(request, "Your organization requires two-factor sign-in: set it up to continue.")
            return redirect("organizations:two_factor")
        return get_response(request)

    return middleware


def session_activity(get_response: Callable[[HttpRequest], HttpResponse]):
    """Keep "last seen" of the signed-in session for the session list (at most once a minute)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        try:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and _is_page_request(request):
                sessions.touch(request)
        except _DATABASE_AWAY:
            pass
        return get_response(request)

    return middleware
