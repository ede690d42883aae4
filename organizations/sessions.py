"""The user's signed-in sessions: recorded at sign-in, "last seen" kept, listed, ended.

Sessions are Django's (the session engine decides where they live); a
UserSession row beside each names its browser, address and last use. The row
is written at sign-in and refreshed at most once a minute per session by
organizations.middleware.session_activity, so browsing costs no extra write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.utils import timezone

from organizations.models import UserSession

# "Last seen" is refreshed at most this often per session.
TOUCH_EVERY = timedelta(minutes=1)
SEEN_SESSION_KEY = "clacks_seen"

_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
    ("curl", re.compile(r"^curl/")),
]
_SYSTEMS = [
    ("Android", re.compile(r"Android")),
    ("iPhone", re.compile(r"iPhone")),
    ("iPad", re.compile(r"iPad")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux|X11")),
]


def describe_user_agent(user_agent: str) -> str:
    """A short name for the browser and system, such as "Firefox on Linux"."""
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown browser"


def _client(request) -> tuple[str, str | None]:
    return request.META.get("HTTP_USER_AGENT", "")[:300], request.META.get("REMOTE_ADDR") or None


def record(request, user) -> None:
    """Note the request's session as one of the user's (at sign-in)."""
    if not request.session.session_key:
        request.session.save()
    user_agent, address = _client(request)
    now = timezone.now()
    UserSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={"user": user, "user_agent": user_agent, "ip_address": address, "last_seen": now, "created_at": now},
    )
    request.session[SEEN_SESSION_KEY] = now.timestamp()


def touch(request, *, force: bool = False) -> None:
    """Refresh the session's "last seen" when a minute has passed since the last refresh."""
    now = timezone.now()
    seen = request.session.get(SEEN_SESSION_KEY)
    if not force and seen is not None and now.timestamp() - seen < TOUCH_EVERY.total_seconds():
        return
    session_key = request.session.session_key
    if not session_key:
        return
    user_agent, address = _client(request)
    updated = UserSession.objects.filter(session_key=session_key, user=request.user).update(
        last_seen=now, ip_address=address, user_agent=user_agent
    )
    if not updated:  # signed in before the list existed
        UserSession.objects.create(
            session_key=session_key, user=request.user, user_agent=user_agent, ip_address=address, last_seen=now
        )
    request.session[SEEN_SESSION_KEY] = now.timestamp()


@dataclass(frozen=True)
class SessionRow:
    pk: int
    device: str
    ip_address: str | None
    created_at: datetime
    last_seen: datetime
    current: bool


def _store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def active_sessions(user, *, current_key: str | None) -> list[SessionRow]:
    """The user's sessions that still exist and have not expired, current first."""
    store = _store()
    rows, gone = [], []
    for entry in UserSession.objects.filter(user=user):
        # load() is empty for a session that is gone or expired (whatever the engine).
        if entry.session_key != current_key and not store(session_key=entry.session_key).load():
            gone.append(entry.pk)
            continue
        rows.append(
            SessionRow(
                pk=entry.pk,
                device=describe_user_agent(entry.user_agent),
                ip_address=entry.ip_address,
                created_at=entry.created_at,
                last_seen=entry.last_seen,
                current=entry.session_key == current_key,
            )
        )
    if gone:
        UserSession.objects.filter(pk__in=gone).delete()
    rows.sort(key=lambda row: (not row.current, -row.last_seen.timestamp()))
    return rows


def end_other_sessions(user, *, keep: str | None) -> int:
    """Sign the user out everywhere but the session `keep`; the number of sessions ended."""
    store = _store()
    ended = 0
    for entry in UserSession.objects.filter(user=user).exclude(session_key=keep or ""):
        store(session_key=entry.session_key).delete()
        entry.delete()
        ended += 1
    return ended


def end_session(entry: UserSession) -> None:
    """Sign one of the user's sessions out."""
    _store()(session_key=entry.session_key).delete()
    entry.delete()


@receiver(user_logged_in, dispatch_uid="clacks_record_session")
def _signed_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        record(request, user)


@receiver(user_logged_out, dispatch_uid="clacks_forget_session")
def _signed_out(sender, request, user, **kwargs):
    if request is not None and getattr(request, "session", None) is not None and request.session.session_key:
        UserSession.objects.filter(session_key=request.session.session_key).delete()
