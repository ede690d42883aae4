"""An app's first-run checklist: five steps from a new app to a team using it, each ticked
from what has happened (no one ticks a box by hand).

- credentials copied: an admin opened the credentials page, or revealed a secret
  (AppSetup.credentials_seen_at, noted by dashboard.manage_views);
- the SDK added: an event sent by something else than the curl example or
  `manage.py send_test_event`;
- the first event received: any stored event;
- a teammate invited: a second member, or an invitation still pending;
- retention chosen: the app's own setting, or the organization's default changed
  (an audit entry says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from dashboard.models import AppSetup
from organizations.models import App, AuditEntry, Invitation, Membership
from telemetry.models import Event

# sdk_version of the events the credentials page's curl example and send_test_event send.
NOT_THE_SDK = ("curl", "clacks-send-test-event/1.0")


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    done: bool
    url: str
    hint: str


@dataclass(frozen=True)
class Checklist:
    steps: list[Step]

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def complete(self) -> bool:
        return self.done == len(self.steps)


def note_credentials_seen(app: App, *, now: datetime | None = None) -> None:
    """Record the first time an admin saw the app's credentials (later visits change nothing)."""
    now = now or timezone.now()
    setup, created = AppSetup.objects.get_or_create(app=app, defaults={"credentials_seen_at": now})
    if not created and setup.credentials_seen_at is None:
        AppSetup.objects.filter(pk=setup.pk, credentials_seen_at__isnull=True).update(credentials_seen_at=now)


def dismiss(app: App, *, now: datetime | None = None) -> None:
    now = now or timezone.now()
    AppSetup.objects.update_or_create(app=app, defaults={"dismissed_at": now})


def for_app(app: App, *, now: datetime | None = None) -> Checklist | None:
    """The app's checklist, or None once dismissed or when every step is done."""
    now = now or timezone.now()
    setup = AppSetup.objects.filter(app=app).first()
    if setup is not None and setup.dismissed_at is not None:
        return None
    organization = app.organization
    keys = {"org_id": organization.public_id, "app_id": app.public_id}
    credentials_url = reverse("dashboard:app_credentials", kwargs=keys)
    events = Event.objects.filter(app=app)
    any_event = events.exists()
    teammates = (
        Membership.objects.filter(organization=organization).count() > 1
        or Invitation.objects.filter(organization=organization, accepted_at__isnull=True, expires_at__gt=now).exists()
    )
    retention_chosen = app.retention_override or AuditEntry.objects.filter(
        Q(action="retention.organization") | Q(action="retention.app", target=app.public_id), organization=organization
    ).exists()
    checklist = Checklist(
        steps=[
            Step(
                "credentials", "Copy the credentials", bool(setup and setup.credentials_seen_at), credentials_url,
                "The endpoint, ids, token and secret your program needs.",
            ),
            Step(
                "sdk", "Add the SDK to your program",
                any_event and events.exclude(sdk_version__in=NOT_THE_SDK).exists(), credentials_url + "#setup-title",
                "Paste the Rust snippet; events from the curl example do not count.",
            ),
            Step(
                "event", "Receive the first event", any_event, reverse("dashboard:app_events", kwargs=keys),
                "Run your program (or the curl example) once.",
            ),
            Step(
                "teammate", "Invite a teammate", teammates,
                reverse("organizations:members", kwargs={"org_id": organization.public_id}),
                "An invitation link for a viewer, admin or owner.",
            ),
            Step(
                "retention", "Choose how long to keep events", retention_chosen,
                reverse("dashboard:app_settings", kwargs=keys) + "#retention",
                "The app keeps the organization's default until you choose.",
            ),
        ]
    )  # fmt: skip
    return None if checklist.complete else checklist
