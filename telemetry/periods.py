"""Time units and UTC day boundaries, defined once for every module that counts by hour or day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

UTC = timezone.utc
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def start_of_day(day: date) -> datetime:
    """UTC midnight at the start of the day."""
    return datetime.combine(day, time.min, tzinfo=UTC)
