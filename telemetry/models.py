"""Stored events and the record of used nonces."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from organizations.models import App


class EventQuerySet(models.QuerySet["Event"]):
    def for_app(self, app: App) -> EventQuerySet:
        return self.filter(app=app)

    def between(self, start, end) -> EventQuerySet:
        """Events with start <= timestamp < end."""
        return self.filter(timestamp__gte=start, timestamp__lt=end)


class Event(models.Model):
    """One SDK event. Column sizes are generous for anything the SDK sends
    (PROTOCOL.md, Body); telemetry.ingest rejects longer values per event
    rather than letting the database refuse the whole batch."""

    app = models.ForeignKey(App, models.CASCADE, related_name="events")
    event_id = models.UUIDField()
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    schema_version = models.CharField(max_length=32)
    event_type = models.CharField(max_length=200)
    category = models.CharField(max_length=200, blank=True)
    user_id = models.CharField(max_length=200)
    session_id = models.CharField(max_length=200, blank=True)
    service_name = models.CharField(max_length=200)
    service_version = models.CharField(max_length=100)
    service_language = models.CharField(max_length=100)
    service_language_version = models.CharField(max_length=100, blank=True)
    os = models.CharField(max_length=100)
    os_version = models.CharField(max_length=100, blank=True)
    arch = models.CharField(max_length=100, blank=True)
    ci = models.BooleanField(null=True)
    shell = models.CharField(max_length=100, blank=True)
    sdk_version = models.CharField(max_length=100)
    data = models.JSONField(default=dict)

    objects = EventQuerySet.as_manager()

    class Meta:
        constraints = [
            # The SDK retries whole batches; this turns a second insert into a no-op.
            # It leads with the app so the table can later be sharded by app.
            models.UniqueConstraint(fields=["app", "event_id"], name="event_once_per_app"),
        ]
        indexes = [
            # Analytics and the events explorer: one app's events in a time range.
            models.Index(fields=["app", "timestamp"], name="event_app_time"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class UsedNonce(models.Model):
    """Nonces seen inside the replay window, shared by every worker and instance
    through the database (used when REDIS_URL is not set)."""

    app_id = models.BigIntegerField()
    nonce = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["app_id", "nonce"], name="nonce_once_per_app"),
        ]
        indexes = [
            # Pruning expired nonces.
            models.Index(fields=["expires_at"], name="nonce_expiry"),
        ]

    def __str__(self) -> str:
        return f"nonce {self.nonce} for app #{self.app_id}"
