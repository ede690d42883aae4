"""Sign-in throttling with django-axes: what settings.AXES_* name, the lockout page and unlocking.

Failures are counted per username and address in the database (axes'
AccessAttempt rows), so every worker and instance shares them with or without
Redis. A pair is locked for CLACKS_LOGIN_LOCKOUT_SECONDS after its last counted
failure; failures during a lockout are not counted (docs/accounts.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from organizations.forms import LoginForm
from organizations.models import Membership
from organizations.services import record_audit


def failure_limit(request: HttpRequest | None = None, credentials: dict | None = None) -> int:
    return settings.CLACKS_LOGIN_MAX_FAILURES


def cool_off(request: HttpRequest | None = None) -> timedelta:
    return timedelta(seconds=settings.CLACKS_LOGIN_LOCKOUT_SECONDS)


def client_ip(request: HttpRequest) -> str | None:
    # The direct peer. Behind a reverse proxy every client shares the proxy's
    # address, which makes the limit per username only: stricter, never looser.
    return request.META.get("REMOTE_ADDR") or None


def _recent(now: datetime | None = None):
    return AccessAttempt.objects.filter(attempt_time__gte=(now or timezone.now()) - cool_off())


def locked_until(username: str, ip_address: str | None, *, now: datetime | None = None) -> datetime | None:
    """When the username+address pair may sign in again, or None when it is not locked."""
    attempts = _recent(now).filter(username=username, ip_address=ip_address)
    totals = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
    if not totals["failures"] or totals["failures"] < failure_limit():
        return None
    return totals["last"] + cool_off()


def locked_usernames(usernames, *, now: datetime | None = None) -> set[str]:
    """Which of these usernames are locked out from at least one address."""
    rows = (
        _recent(now)
        .filter(username__in=list(usernames))
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"))
    )
    return {row["username"] for row in rows if row["failures"] >= failure_limit()}


def unlock(membership: Membership, *, by=None) -> int:
    """Forget the member's failed sign-ins from every address (audited); the records removed."""
    username = membership.user.get_username()
    deleted, _ = AccessAttempt.objects.filter(username=username).delete()
    record_audit(membership.organization, action="member.unlock", target=username, actor=by)
    return deleted


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the sign-in page again, saying until when the pair is locked (429)."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    until = locked_until(username, client_ip(request)) or timezone.now() + cool_off()
    minutes = max(1, -(-int((until - timezone.now()).total_seconds()) // 60))
    form = LoginForm(request, initial={"username": username})
    context = {
        "form": form,
        "next": request.POST.get("next", ""),
        "locked_until": until,
        "locked_minutes": minutes,
    }
    return render(request, "accounts/login.html", context, status=429)
