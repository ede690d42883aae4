"""Every write and delete of event rows and their derived tables goes through here."""

from __future__ import annotations

from django.db import transaction

from telemetry.models import Event


def delete_app_events(app_pk: int, *, batch_size: int = 5000) -> int:
    """Delete every event of the app; returns how many went.

    In bounded batches, each its own transaction, so a big app never holds one
    huge transaction (and its locks) for minutes. Disable the app first, or
    ingest keeps adding events while this runs."""
    events = Event.objects.filter(app_id=app_pk)
    deleted = 0
    while True:
        ids = list(events.order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            count, _ = events.filter(pk__in=ids).delete()
        deleted += count
