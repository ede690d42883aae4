"""Delivering stored notifications (README, Alerts: Delivery).

Notifications are stored first (alerts.rules, alerts.channels) and sent only
here, by the scheduler's `deliveries` job, never inside a web request. Each
is claimed with one conditional UPDATE (a lease), so several schedulers never
send it at once; every attempt is logged with its status, latency and the
start of the answer. A failure is retried with exponential backoff until the
notification is MAX_AGE old; a channel whose deliveries fail
CLACKS_CHANNEL_MAX_FAILURES times in a row is disabled (the dashboard says so).

A scheduler killed between sending and recording leaves the lease to expire,
and the notification is sent again: delivery is at least once, and the
idempotency key (the same on every attempt) lets a receiver drop the repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts import outbound
from alerts.models import Channel, ChannelKind, DeliveryAttempt, Notification, NotificationStatus

logger = logging.getLogger(__name__)

# Retries: 30 s, 1, 2, 4 … minutes, at most an hour apart, for 24 hours after the notification was stored.
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
MAX_AGE = timedelta(hours=24)
# A claimed notification is another runner's after this (a runner killed mid-delivery).
LEASE = timedelta(minutes=2)
# A run takes notifications for this long, then leaves the rest to the next run (5 s later), so
# the rules' evaluation in the same lane (telemetry.scheduler) is not held up long.
RUN_BUDGET = timedelta(seconds=10)
BATCH = 20


def backoff(attempts: int) -> timedelta:
    """The wait after the attempts-th failed attempt."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """hex(HMAC-SHA256(secret, "{timestamp}:{body}")): the ingest signature without a nonce (docs/protocol.md)."""
    return hmac.new(secret.encode(), timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def slack_text(payload: dict) -> str:
    if payload.get("type") == "digest":
        return f"*{payload['subject']}*\n```{payload['text']}```"
    if payload.get("type") != "alert":
        return payload.get("message", "Clacks notification")
    state = "FIRING" if payload["state"] == "firing" else "Resolved"
    return f"[{state}] {payload['rule']['name']} on {payload['app']['name']}: {payload['message']} <{payload['link']}|Open in Clacks>"


def request_for(notification: Notification, *, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers a webhook channel gets for this notification."""
    channel = notification.channel
    payload = {**notification.payload, "idempotency_key": str(notification.idempotency_key)}
    if channel.kind == ChannelKind.SLACK:
        payload = {"text": slack_text(notification.payload)}
    body = orjson.dumps(payload)
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Clacks/{settings.CLACKS_VERSION}",
        "X-Clacks-Timestamp": timestamp,
        "X-Clacks-Idempotency-Key": str(notification.idempotency_key),
    }
    secret = channel.signing_secret()
    if secret:
        headers["X-Clacks-Signature"] = sign(secret, timestamp, body)
    return body, headers


def email_for(notification: Notification) -> EmailMessage:
    payload = notification.payload
    if payload.get("type") == "alert":
        state = "FIRING" if payload["state"] == "firing" else "Resolved"
        subject = f"[Clacks] {state}: {payload['rule']['name']} on {payload['app']['name']}"
        text = (
            f"{payload['message']}\n\nRule: {payload['rule']['name']} ({payload['rule']['kind']})\n"
            f"App: {payload['app']['name']} ({payload['app']['id']})\nValue: {payload['value']}\n"
            f"Threshold: {payload['threshold']}\n\n{payload['link']}\n"
        )
    else:
        subject = f"[Clacks] {payload.get('subject', 'Notification')}"
        text = payload.get("text") or payload.get("message", "")
    return EmailMessage(
        subject=subject, body=text, to=recipients(notification),
        headers={"X-Clacks-Idempotency-Key": str(notification.idempotency_key)},
    )  # fmt: skip


def recipients(notification: Notification) -> list[str]:
    """A member's own digest goes to their address; everything else to the channel's."""
    return [notification.email_to] if notification.channel is None else notification.channel.recipient_list


@dataclass
class Outcome:
    ok: bool
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    seconds: float = 0.0


def send(notification: Notification, *, now: datetime) -> Outcome:
    """One attempt; never raises for what the network or the receiver does."""
    channel = notification.channel
    started = time.monotonic()
    if channel is None or channel.kind == ChannelKind.EMAIL:
        if not settings.EMAIL_HOST:
            return Outcome(False, error="SMTP is not configured on this server (EMAIL_HOST)")
        try:
            message = email_for(notification)
            message.connection = get_connection(timeout=settings.EMAIL_TIMEOUT)
            sent = message.send()
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome(False, error=_describe(exc), seconds=time.monotonic() - started)
        if not sent:
            return Outcome(False, error="the mail server accepted no recipient", seconds=time.monotonic() - started)
        return Outcome(True, excerpt=f"sent to {len(recipients(notification))} recipients", seconds=time.monotonic() - started)
    body, headers = request_for(notification, now=now)
    try:
        answer = outbound.post(channel.url, body, headers)
    except outbound.Refused as exc:
        return Outcome(False, error=f"refused: {exc}"[:300], seconds=time.monotonic() - started)
    except OSError as exc:
        return Outcome(False, error=_describe(exc), seconds=time.monotonic() - started)
    ok = 200 <= answer.status < 300
    return Outcome(ok, answer.status, answer.excerpt, "" if ok else f"HTTP {answer.status}", answer.seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def claim(pk: int, *, now: datetime) -> bool:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return Notification.objects.filter(free, pk=pk, status=NotificationStatus.PENDING).update(lease_until=now + LEASE) == 1


@transaction.atomic
def record(notification: Notification, outcome: Outcome, *, now: datetime) -> None:
    """The attempt logged, the notification delivered or rescheduled, the channel's failure count
    kept: all or none of it, so an attempt is never logged for a notification left as it was."""
    DeliveryAttempt.objects.create(
        notification=notification, started_at=now, ok=outcome.ok, status_code=outcome.status_code,
        latency_ms=int(outcome.seconds * 1000), response_excerpt=outcome.excerpt[: outbound.EXCERPT], error=outcome.error[:300],
    )  # fmt: skip
    attempts = notification.attempts + 1
    channel = notification.channel
    if outcome.ok:
        Notification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.DELIVERED, delivered_at=now, attempts=attempts, lease_until=None, last_error=""
        )
        if channel is not None:
            Channel.objects.filter(pk=channel.pk).update(consecutive_failures=0)
        return
    expired = now + backoff(attempts) - notification.created_at > MAX_AGE
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.FAILED if expired else NotificationStatus.PENDING,
        attempts=attempts, lease_until=None, last_error=outcome.error[:300], next_attempt_at=now + backoff(attempts),
    )  # fmt: skip
    if channel is None:
        return  # a member's own digest: no channel to count against
    Channel.objects.filter(pk=channel.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = Channel.objects.filter(pk=channel.pk).values_list("consecutive_failures", flat=True).first() or 0
    if failures >= settings.CLACKS_CHANNEL_MAX_FAILURES:
        disabled = Channel.objects.filter(pk=channel.pk, is_active=True).update(
            is_active=False, disabled_at=now, disabled_reason=f"{failures} deliveries failed in a row; the last: {outcome.error}"[:300]
        )
        if disabled:
            logger.warning("alert channel %s of %s disabled after %d failed deliveries", channel.pk, channel.organization_id, failures)


@dataclass
class DeliveryResult:
    delivered: int = 0
    failed: int = 0
    ids: list[str] = field(default_factory=list)


def due(*, now: datetime) -> list[int]:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return list(
        Notification.objects.filter(free, status=NotificationStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(channel__isnull=True) | Q(channel__is_active=True))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:BATCH]
    )


def deliver_due(*, now: datetime | None = None, budget: timedelta = RUN_BUDGET) -> DeliveryResult:
    """Send what is due, one notification at a time, until none is left or the budget is spent.
    `now` fixes the clock (tests); by default each attempt reads the time."""
    fixed = now
    deadline = time.monotonic() + budget.total_seconds()
    result, seen = DeliveryResult(), set()
    while time.monotonic() < deadline:
        moment = fixed or timezone.now()
        batch = [pk for pk in due(now=moment) if pk not in seen]
        if not batch:
            break
        for pk in batch:
            seen.add(pk)
            moment = fixed or timezone.now()
            if not claim(pk, now=moment):
                continue
            notification = Notification.objects.select_related("channel").get(pk=pk)
            if notification.channel is not None and not notification.channel.is_active:
                Notification.objects.filter(pk=pk).update(lease_until=None)
                continue
            outcome = send(notification, now=moment)
            record(notification, outcome, now=fixed or timezone.now())
            if outcome.ok:
                result.delivered += 1
            else:
                result.failed += 1
                logger.info("notification %s to channel %s failed: %s", notification.idempotency_key, notification.channel_id, outcome.error)
            if time.monotonic() >= deadline:
                break
    return result


def deliver_job(now: datetime) -> str:
    """The scheduler's `deliveries` job (alerts.apps)."""
    result = deliver_due()
    return f"{result.delivered} notifications delivered, {result.failed} attempts failed"
