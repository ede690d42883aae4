"""API keys: an organization's long-lived credentials for the REST API (README, "REST API")."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from organizations.models import Organization


class Scope(models.TextChoices):
    READ = "read", "read: organizations, apps and every analytics figure"
    EVENTS = "events", "events: raw events, one at a time or paged"
    EXPORT = "export", "export: the streaming export of an app's events"
    ADMIN = "admin", "admin: create, rename, disable apps; credentials; retention"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self, *, now=None) -> ApiKeyQuerySet:
        """Keys not revoked and not expired."""
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class ApiKey(models.Model):
    """One key of one organization. The token itself is shown once and never stored:
    only its SHA-256 (a random 256-bit token needs no slow hash) and its first characters."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The token's SHA-256 in hex: what a request's bearer token is looked up by.
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the token, to tell keys apart on the page and in the audit log.
    prefix = models.CharField(max_length=16)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Updated at most once a minute (api.keys.LAST_USED_RESOLUTION), not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"API key {self.name} ({self.prefix}…) of {self.organization.public_id}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def is_usable(self, *, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def audit_label(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ApiRequestCounter(models.Model):
    """API requests of one key in its current one-minute window, when REDIS_URL is not
    set: one row per key, reset in place when a new minute starts (as
    telemetry.models.RequestCounter is for ingest). UNLOGGED on PostgreSQL."""

    key_id = models.BigIntegerField(primary_key=True)
    window_start = models.BigIntegerField(help_text="Unix seconds at which the counted minute began.")
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.count} requests for API key #{self.key_id} since {self.window_start}"
