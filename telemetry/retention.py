"""Retention: which events are past their app's retention period, and deleting them.

Both the dashboard's preview and `manage.py purge_events` use these functions,
so the preview counts exactly what the purge would delete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from organizations.models import App, Organization
from telemetry import archive, storage
from telemetry.databases import events_atomic, events_connection
from telemetry.periods import UTC
from telemetry.models import Event, HourlyCounts

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000


def retention_cutoff(days: int | None, *, now: datetime, archive: bool = False) -> datetime | None:
    """The moment before which events are past retention, or None to keep them forever.

    An app that archives before deleting loses whole UTC days only, one file each
    (docs/archive.md): its cutoff is the UTC midnight at or before."""
    if days is None:
        return None
    cutoff = now - timedelta(days=days)
    if archive:
        cutoff = cutoff.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return cutoff


def count_before(app: App, cutoff: datetime) -> int:
    """How many of the app's events have timestamp < cutoff.

    Whole UTC hours come from the hourly rollups (kept exactly in step with the
    events by telemetry.storage), the partial hour before the cutoff from raw
    events: counting half a million raw rows takes PostgreSQL most of a second,
    which a settings page must not spend."""
    hour = cutoff.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    whole_hours = HourlyCounts.objects.filter(app=app, dimension="total", hour__lt=hour).aggregate(n=Sum("events"))["n"]
    partial_hour = Event.objects.filter(app=app, timestamp__gte=hour, timestamp__lt=cutoff).count()
    return (whole_hours or 0) + partial_hour


def stored_events(app: App) -> int:
    """How many events the app has stored (from the rollups)."""
    return HourlyCounts.objects.filter(app=app, dimension="total").aggregate(n=Sum("events"))["n"] or 0


def count_older_than(app: App, *, days: int | None, now: datetime) -> int:
    """How many of the app's events a retention of `days` would remove now (0 for forever)."""
    cutoff = retention_cutoff(days, now=now, archive=app.effective_archive)
    if cutoff is None:
        return 0
    return count_before(app, cutoff)


def events_past_retention(app: App, *, now: datetime | None = None) -> int:
    """How many events the app's effective retention would remove now."""
    return count_older_than(app, days=app.effective_retention_days, now=now or timezone.now())


def preview_organization_default(organization: Organization, *, days: int | None, now: datetime) -> int:
    """Events a new organization default of `days` would remove now, over the apps that
    follow the default (apps with their own override are not affected)."""
    return sum(
        count_older_than(app, days=days, now=now)
        for app in organization.apps.filter(retention_override=False)
    )


@dataclass(frozen=True)
class PruneResult:
    app_public_id: str
    deleted: int
    batches: int
    dry_run: bool


def _next_batch(app: App, cutoff: datetime, batch_size: int) -> list[int]:
    """Primary keys of up to batch_size expired events, locked for this transaction.

    On PostgreSQL, SKIP LOCKED lets two purges run at once: each takes rows the
    other has not locked, so no row is counted twice and neither waits. SQLite
    has no row locks; its single write lock serialises the purges instead."""
    rows = Event.objects.filter(app=app, timestamp__lt=cutoff).order_by("timestamp").values_list("pk", flat=True)
    if events_connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True)
    return list(rows[:batch_size])


def prune_app(
    app: App,
    *,
    now: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete the app's events older than its effective retention, batch_size rows per
    transaction, and stamp App.retention_last_run_at. A dry run only counts.

    `progress`, when given, is called with the running total after each batch."""
    days = app.effective_retention_days
    cutoff = retention_cutoff(days, now=now, archive=app.effective_archive)
    if dry_run:
        count = 0 if cutoff is None else count_before(app, cutoff)
        return PruneResult(app.public_id, count, 0, dry_run=True)
    deleted = batches = 0
    if cutoff is not None and app.effective_archive:
        # Written and verified first, then deleted; an ArchiveError leaves the events in place.
        run = archive.archive_and_delete(app, before=cutoff, batch_size=batch_size, progress=progress)
        deleted, batches = run.deleted, run.batches
    elif cutoff is not None:
        while True:
            with events_atomic():
                ids = _next_batch(app, cutoff, batch_size)
                if not ids:
                    break
                count = storage.delete_events(app.pk, ids)  # takes them out of the rollups too
            deleted += count
            batches += 1
            if progress is not None:
                progress(deleted)
    App.objects.filter(pk=app.pk).update(retention_last_run_at=now)
    app.retention_last_run_at = now
    return PruneResult(app.public_id, deleted, batches, dry_run=False)
