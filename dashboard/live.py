"""The overview's live view (static/js/live.js): events of the last few minutes,
read from the (app, timestamp) index of the events table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from telemetry.models import Event

RECENT = timedelta(minutes=30)


@dataclass(frozen=True)
class Recent:
    count: int  # events whose time falls in the last 30 minutes
    since: datetime
    at: datetime  # when this was counted

    @property
    def minutes(self) -> int:
        return int(RECENT.total_seconds() // 60)


def recent_events(app_ids: Sequence[int], *, now: datetime | None = None) -> Recent:
    """Events of these apps stamped in the last 30 minutes (up to now: a client whose
    clock runs ahead does not count early)."""
    now = now or timezone.now()
    since = now - RECENT
    count = Event.objects.filter(app_id__in=list(app_ids), timestamp__gte=since, timestamp__lte=now).count()
    return Recent(count=count, since=since, at=now)
