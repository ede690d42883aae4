"""Alert rules (per app), their transitions, the organization's channels, and the
notifications stored for delivery with each delivery attempt (README, Alerts)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from organizations.crypto import decrypt_secret
from organizations.models import App, Organization


class RuleKind(models.TextChoices):
    SILENCE = "silence", "No events for a while"
    VOLUME = "volume", "Events per hour against a week earlier"
    FAILURE_RATE = "failure_rate", "Command failure rate"
    NEW_VERSION = "new_version", "New version first seen"
    REGRESSION = "regression", "Release regression flagged"
    QUOTA = "quota", "Monthly quota used"


class Direction(models.TextChoices):
    ABOVE = "above", "above"
    BELOW = "below", "below"


class State(models.TextChoices):
    OK = "ok", "OK"
    FIRING = "firing", "Firing"


class Rule(models.Model):
    """One condition on one app. Which parameter fields matter depends on `kind`
    (alerts.rules, one function per kind; the form asks only for those)."""

    app = models.ForeignKey(App, models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    is_active = models.BooleanField(default=True)
    # silence: minutes without events; failure_rate and new_version: the window in minutes.
    minutes = models.PositiveIntegerField(null=True, blank=True)
    # volume: this hour's events against `factor` times (above) or 1/`factor` (below) the same hour a week earlier.
    factor = models.FloatField(null=True, blank=True)
    direction = models.CharField(max_length=5, choices=Direction.choices, blank=True)
    # failure_rate: percent of failed runs; quota: percent of the monthly quota.
    threshold = models.FloatField(null=True, blank=True)
    # volume: events the busier of the two hours needs; failure_rate: runs in the window.
    min_count = models.PositiveIntegerField(default=0)
    # failure_rate: one command, or empty for every command together.
    command = models.CharField(max_length=200, blank=True)
    # A firing rule stays firing at least this long, so a flapping condition notifies
    # at most one firing and one resolve per cooldown.
    cooldown_minutes = models.PositiveIntegerField(default=30)

    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    state_since = models.DateTimeField(default=timezone.now)
    last_value = models.CharField(max_length=200, blank=True)
    # The minute (UTC) of the last evaluation: claimed with one conditional UPDATE, so a
    # rule is evaluated once per minute however many schedulers run (alerts.rules).
    evaluated_minute = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="alert_rule_name_once_per_app")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) on {self.app.public_id}"


class Transition(models.Model):
    """A rule going from ok to firing or from firing back to ok ("resolved"): the app's alert history."""

    FIRING = "firing"
    RESOLVED = "resolved"

    app = models.ForeignKey(App, models.CASCADE, related_name="alert_transitions")
    # Kept (rule emptied, name kept) when the rule is deleted: history stays.
    rule = models.ForeignKey(Rule, models.SET_NULL, null=True, blank=True, related_name="transitions")
    rule_name = models.CharField(max_length=100)
    rule_kind = models.CharField(max_length=20, choices=RuleKind.choices)
    to_state = models.CharField(max_length=10)  # FIRING or RESOLVED
    value = models.CharField(max_length=200, blank=True)
    threshold = models.CharField(max_length=200, blank=True)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The app's history page, newest first.
            models.Index(fields=["app", "-created_at"], name="alert_transition_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} {self.to_state} at {self.created_at:%Y-%m-%d %H:%M}"


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (JSON, signed)"
    SLACK = "slack", "Slack-compatible webhook"
    EMAIL = "email", "Email"


class Channel(models.Model):
    """Where an organization's notifications go: every active channel gets every notification."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    url = models.URLField(max_length=500, blank=True)
    # Webhooks: the HMAC-SHA256 signing secret, Fernet-encrypted like the app secrets.
    secret_encrypted = models.TextField(blank=True)
    # Email: recipients, comma-separated.
    recipients = models.CharField(max_length=500, blank=True)
    is_active = models.BooleanField(default=True)
    # Also gets the organization's weekly digest (alerts.digest).
    weekly_digest = models.BooleanField(default=False)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Set when delivery disabled the channel after CLACKS_CHANNEL_MAX_FAILURES failures in a row.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="alert_channel_name_once_per_org")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) of {self.organization.public_id}"

    def signing_secret(self) -> str:
        return decrypt_secret(self.secret_encrypted) if self.secret_encrypted else ""

    @property
    def recipient_list(self) -> list[str]:
        return [item.strip() for item in self.recipients.split(",") if item.strip()]


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class Notification(models.Model):
    """One message for one channel, stored before any delivery is tried (alerts.delivery)."""

    # Empty for a member's own weekly digest, which goes to `email_to` (alerts.digest).
    channel = models.ForeignKey(Channel, models.CASCADE, null=True, blank=True, related_name="notifications")
    email_to = models.EmailField(blank=True)
    transition = models.ForeignKey(Transition, models.CASCADE, null=True, blank=True, related_name="notifications")
    kind = models.CharField(max_length=10, default="alert")  # "alert", "test" or "digest"
    # Sent with every attempt (X-Clacks-Idempotency-Key): a receiver drops repeats by it.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A delivery run holds the notification until then (claimed with one conditional UPDATE).
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # An alert transition is notified once per channel, however often evaluation runs.
            models.UniqueConstraint(fields=["channel", "transition"], name="notification_once_per_transition"),
        ]
        indexes = [
            # The delivery job's scan: pending notifications due now.
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
        ]

    def __str__(self) -> str:
        return f"notification {self.idempotency_key} to {self.channel_id or self.email_to} ({self.status})"


class DeliveryAttempt(models.Model):
    notification = models.ForeignKey(Notification, models.CASCADE, related_name="delivery_attempts")
    started_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"attempt at {self.started_at:%Y-%m-%d %H:%M:%S}: {'ok' if self.ok else 'failed'}"


class DigestSubscription(models.Model):
    """A member who wants the organization's weekly digest by email (their account's address)."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="digest_subscription_once")]

    def __str__(self) -> str:
        return f"weekly digest of {self.organization.public_id} for {self.user}"


class Digest(models.Model):
    """One organization's digest of one week, made once: the row is the claim (alerts.digest)."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    week_start = models.DateField(help_text="The Monday (UTC) the week began.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "week_start"], name="digest_once_per_week")]

    def __str__(self) -> str:
        return f"digest of {self.organization.public_id} for the week of {self.week_start}"
