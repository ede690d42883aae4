"""Account middleware: two-factor before any page, and the session list's "last seen".

Both act only for signed-in users; they run after django_otp's OTPMiddleware,
which gives request.user.is_verified() (settings.MIDDLEWARE).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

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


def _open_paths(names) -> frozenset[str]:
    return frozenset(reverse(name) for name in names)


def _is_page_request(request: HttpRequest) -> bool:
    # Static files are served before this runs (whitenoise); the ingest API carries no session.
    return not request.path_info.startswith("/v1/")


def two_factor(get_response: Callable[[HttpRequest], HttpResponse]):
    """A user with two-factor on must give a code before any other page (the Django
    admin included); a member of an organization that requires two-factor who has
    none is led to enrol first (docs/accounts.md)."""
    verify_open: frozenset[str] | None = None
    enrol_open: frozenset[str] | None = None

    def middleware(request: HttpRequest) -> HttpResponse:
        nonlocal verify_open, enrol_open
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified() or not _is_page_request(request):
            return get_response(request)
        if verify_open is None:
            verify_open, enrol_open = _open_paths(_VERIFY_OPEN), _open_paths(_ENROL_OPEN)
        if twofactor.is_enabled(user):
            if request.path_info not in verify_open:
                query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
                url = reverse("organizations:two_factor_verify")
                return redirect(f"{url}?{query}" if query else url)
        elif twofactor.requires_enrolment(user) and request.path_info not in enrol_open:
            messages.info(request, "Your organization requires two-factor sign-in: set it up to continue.")
            return redirect("organizations:two_factor")
        return get_response(request)

    return middleware


def session_activity(get_response: Callable[[HttpRequest], HttpResponse]):
    """Keep "last seen" of the signed-in session for the session list (at most once a minute)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and _is_page_request(request):
            sessions.touch(request)
        return get_response(request)

    return middleware
