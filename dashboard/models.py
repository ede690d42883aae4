"""What the analytics pages save: funnels (dashboard.funnels computes them)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from organizations.models import App

HOUR = 3600
DAY = 24 * HOUR
# The conversion windows a funnel may have, in seconds: the time a user has,
# from entering the funnel, to do every later step.
WINDOWS = [
    (HOUR, "1 hour"),
    (6 * HOUR, "6 hours"),
    (DAY, "1 day"),
    (3 * DAY, "3 days"),
    (7 * DAY, "7 days"),
    (14 * DAY, "14 days"),
    (30 * DAY, "30 days"),
]
MAX_STEPS = 8


class Funnel(models.Model):
    """Ordered steps of one app, each an event type and optionally a command or
    feature name, and a conversion window (docs/insights.md, Funnels).

    `steps` is a list of {"type": event type, "name": command or feature
    name, "" for any}, 2 to MAX_STEPS of them, as dashboard.funnel_forms
    validates them; dashboard.funnels.steps_of reads it."""

    # No index of its own: the unique key below leads with the app.
    app = models.ForeignKey(App, models.CASCADE, related_name="funnels", db_index=False)
    name = models.CharField(max_length=100)
    steps = models.JSONField(default=list)
    window_seconds = models.PositiveIntegerField(choices=WINDOWS, default=DAY)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            # Names are how people tell funnels apart in the list; also the list's index.
            models.UniqueConstraint(fields=["app", "name"], name="funnel_name_once_per_app"),
        ]

    def __str__(self) -> str:
        return f"funnel {self.name!r} of app #{self.app_id}"

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)


# The parts of an app's analytics a share link may show (docs/sharing.md).
SHARE_SECTIONS = [
    ("overview", "Overview: totals and events over time"),
    ("breakdowns", "Breakdowns: event types, categories, OS, architecture, versions, CI"),
    ("commands", "Commands: runs, success rate, durations, the most run commands"),
    ("releases", "Releases: versions with their users and share of the last 7 days"),
    ("platforms", "Platforms: users, events and failure rate per OS and architecture"),
    ("badges", "Badges: SVG images for a README (only for links without a password)"),
]


class ShareLinkQuerySet(models.QuerySet["ShareLink"]):
    def usable(self, *, now) -> ShareLinkQuerySet:
        """Links that are not revoked, not expired, of an app and organization that are active."""
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now),
            revoked_at__isnull=True,
            app__is_active=True,
            app__organization__is_active=True,
        )


class ShareLink(models.Model):
    """A read-only public link to some sections of one app's analytics (docs/sharing.md).

    The token in the URL is stored as its SHA-256 (like API tokens: it is shown
    once); the optional password with Django's password hasher."""

    app = models.ForeignKey(App, models.CASCADE, related_name="share_links")
    label = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the token, to tell links apart in the list.
    token_prefix = models.CharField(max_length=16)
    sections = models.JSONField(default=list)
    password_hash = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The app's share page lists its links, newest first.
            models.Index(fields=["app", "-created_at"], name="share_link_app_recent"),
        ]

    def __str__(self) -> str:
        return f"share link {self.token_prefix}… of app #{self.app_id}"

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    def shows(self, section: str) -> bool:
        return section in self.sections

    def is_usable(self, *, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AppSetup(models.Model):
    """What an app's first-run checklist (dashboard.checklist) cannot read from other rows:
    when an admin first saw its credentials page, and whether the checklist was dismissed."""

    app = models.OneToOneField(App, models.CASCADE, primary_key=True, related_name="setup")
    credentials_seen_at = models.DateTimeField(null=True, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"setup of {self.app_id}"
