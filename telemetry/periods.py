"""Time units, UTC day boundaries and ranges of time, defined once for every module that needs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

UTC = timezone.utc
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def start_of_day(day: date) -> datetime:
    """UTC midnight at the start of the day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


class InvalidRange(ValueError):
    """A range a person asked for that cannot be: the message says why."""


@dataclass(frozen=True)
class TimeRange:
    """start <= timestamp < end, in UTC; None leaves that side open."""

    start: datetime | None
    end: datetime | None

    def label(self) -> str:
        """`2026-11-01_2026-11-30` for file names; the `to` day is the last day included."""
        first = self.start.date().isoformat() if self.start else "start"
        last = (self.end - timedelta(microseconds=1)).date().isoformat() if self.end else "now"
        return f"{first}_{last}"


def day_range(first: date | None, last: date | None) -> TimeRange:
    """Whole UTC days from `first` through `last`, both included; None leaves that side open."""
    if first and last and last < first:
        raise InvalidRange("The end date is before the start date.")
    try:
        end = start_of_day(last) + DAY if last else None
    except OverflowError:  # 9999-12-31 has no next day
        raise InvalidRange("The end date is too far in the future.") from None
    return TimeRange(start=start_of_day(first) if first else None, end=end)
