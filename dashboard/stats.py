"""Analytics reads: every number an analytics page shows comes from a function here.

Each function takes the apps to count (primary keys, so one app and a whole
organization share the code) and a time range, runs a bounded number of
aggregate queries over the (app, timestamp) index, and returns plain values a
template can use. Views never build event queries themselves, so these
functions can later read pre-aggregated tables instead without a view changing.

Times are UTC throughout: ranges and buckets start on UTC hour or day
boundaries, and pages label them so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as dt_timezone

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    BooleanField,
    Case,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, RowNumber, Substr, TruncDay, TruncHour

from organizations.models import App
from telemetry.models import Event

UTC = dt_timezone.utc
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Ranges up to this long are counted per hour, longer ones per day.
HOURLY_UP_TO = timedelta(hours=48)
# The longest custom range a page accepts (daily buckets: about 3 years of bars).
MAX_RANGE = timedelta(days=1100)

# What the SDK's track_command() sends (telemetry-kit src/telemetry.rs).
COMMAND_EVENT_TYPE = "command_execution"
PERCENTILES = (0.5, 0.9, 0.99)
MAX_PK = 2**63 - 1  # events.id is a bigint


# --- Time ranges -----------------------------------------------------------------------


@dataclass(frozen=True)
class TimeRange:
    """start <= timestamp < end, both on UTC bucket boundaries."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def hourly(self) -> bool:
        return self.length <= HOURLY_UP_TO

    @property
    def bucket(self) -> str:
        return "hour" if self.hourly else "day"

    @property
    def bucket_size(self) -> timedelta:
        return HOUR if self.hourly else DAY

    @property
    def previous(self) -> TimeRange:
        """The period of equal length just before this one."""
        return TimeRange(start=self.start - self.length, end=self.start)

    def bucket_starts(self) -> list[datetime]:
        step = self.bucket_size
        starts, moment = [], floor_to(self.start, step)
        while moment < self.end:
            starts.append(moment)
            moment += step
        return starts


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The UTC hour or day boundary at or before the moment."""
    moment = moment.astimezone(UTC)
    if step == HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# Preset ranges offered on every analytics page, in display order.
PRESETS = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
DEFAULT_PRESET = "7d"


def preset_range(key: str, *, now: datetime) -> TimeRange:
    """The preset range ending with the current hour (24 h) or the current UTC day."""
    length = PRESETS[key][1]
    step = HOUR if length <= HOURLY_UP_TO else DAY
    end = floor_to(now, step) + step
    return TimeRange(start=end - length, end=end)


def day_range(first: date, last: date) -> TimeRange:
    """Whole UTC days from `first` to `last`, both included."""
    start = datetime.combine(first, time.min, tzinfo=UTC)
    end = datetime.combine(last, time.min, tzinfo=UTC) + DAY
    return TimeRange(start=start, end=end)


# --- Query helpers --------------------------------------------------------------------


def _events(app_ids: Sequence[int], period: TimeRange) -> QuerySet[Event]:
    # app_id IN (...) AND timestamp range: an index range scan on event_app_time per app.
    return Event.objects.filter(app_id__in=list(app_ids), timestamp__gte=period.start, timestamp__lt=period.end)


class JSONIsNumber(Func):
    """True where data[key] is a JSON number, so a cast of it cannot fail on PostgreSQL."""

    output_field = BooleanField()

    def __init__(self, field: str, key: str):
        super().__init__(F(field), Value(key, output_field=CharField()))
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        field_sql, field_params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            return f"(jsonb_typeof({field_sql} -> %s) = 'number')", [*field_params, self.key]
        if connection.vendor == "sqlite":
            path = '$."' + self.key.replace('"', "") + '"'
            return f"(json_type({field_sql}, %s) IN ('integer', 'real'))", [*field_params, path]
        raise NotImplementedError(f"JSONIsNumber has no SQL for {connection.vendor}")


def _number(key: str) -> Case:
    """data[key] as a float where it is a JSON number, else NULL (never a cast error)."""
    return Case(
        When(JSONIsNumber("data", key), then=Cast(KeyTextTransform(key, "data"), FloatField())),
        default=None,
        output_field=FloatField(),
    )


class PercentileDisc(Aggregate):
    """PostgreSQL's nearest-rank percentile: the first value whose rank reaches the fraction."""

    function = "percentile_disc"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


# --- Totals and change ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    current: int
    previous: int

    @property
    def percent(self) -> float | None:
        """Change against the previous period in percent; None when that period had nothing."""
        if self.previous == 0:
            return None
        return (self.current - self.previous) * 100 / self.previous


@dataclass(frozen=True)
class Summary:
    events: Change
    users: Change
    sessions: Change


def summary(app_ids: Sequence[int], *, period: TimeRange) -> Summary:
    """Events, distinct users and distinct sessions in the period and in the one before (one query)."""
    both = TimeRange(start=period.previous.start, end=period.end)
    now_q = Q(timestamp__gte=period.start)
    before_q = Q(timestamp__lt=period.start)
    with_session = ~Q(session_id="")
    row = _events(app_ids, both).aggregate(
        events=Count("pk", filter=now_q),
        events_before=Count("pk", filter=before_q),
        users=Count("user_id", distinct=True, filter=now_q),
        users_before=Count("user_id", distinct=True, filter=before_q),
        sessions=Count("session_id", distinct=True, filter=now_q & with_session),
        sessions_before=Count("session_id", distinct=True, filter=before_q & with_session),
    )
    return Summary(
        events=Change(row["events"], row["events_before"]),
        users=Change(row["users"], row["users_before"]),
        sessions=Change(row["sessions"], row["sessions_before"]),
    )


def has_events(app_ids: Sequence[int]) -> bool:
    """Whether any of the apps ever stored an event (the empty state's question)."""
    return Event.objects.filter(app_id__in=list(app_ids)).exists()


# --- Events over time -----------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int


def events_over_time(app_ids: Sequence[int], *, period: TimeRange) -> list[Bucket]:
    """Event counts per UTC hour or day across the period; buckets without events are zero."""
    rows = (
        _events(app_ids, period)
        .annotate(bucket=_bucket_start(hourly=period.hourly))
        .values("bucket")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = {_as_bucket_start(row["bucket"], hourly=period.hourly): row["n"] for row in rows}
    return [Bucket(start=start, count=counts.get(start, 0)) for start in period.bucket_starts()]


def _bucket_start(*, hourly: bool):
    if connection.vendor == "sqlite":
        # Django keeps SQLite datetimes as UTC text, "YYYY-MM-DD HH:MM:SS...", so
        # the bucket is a prefix: several times faster than Trunc, which calls
        # a Python function for every row on SQLite.
        return Substr("timestamp", 1, 13 if hourly else 10, output_field=CharField())
    return (TruncHour if hourly else TruncDay)("timestamp", tzinfo=UTC)


def _as_bucket_start(value, *, hourly: bool) -> datetime:
    if isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%d %H" if hourly else "%Y-%m-%d").replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --- Breakdowns ---------------------------------------------------------------------------

# Dimension (an Event column) and its heading, in display order.
DIMENSIONS = {
    "event_type": "Event type",
    "category": "Category",
    "os": "Operating system",
    "arch": "Architecture",
    "service_version": "Service version",
    "ci": "CI",
}
_CI_LABELS = {True: "CI", False: "Not CI", None: "Unknown"}


@dataclass(frozen=True)
class BreakdownRow:
    value: str | bool | None
    label: str
    count: int
    share: float  # percent of the period's events


@dataclass(frozen=True)
class Breakdown:
    dimension: str
    title: str
    rows: list[BreakdownRow]
    other: int  # events in values past the shown ones
    total: int


def _label(dimension: str, value) -> str:
    if dimension == "ci":
        return _CI_LABELS[value]
    return value if value else "(none)"


def breakdowns(
    app_ids: Sequence[int], *, period: TimeRange, dimensions: Sequence[str] = tuple(DIMENSIONS), limit: int = 8
) -> list[Breakdown]:
    """The most frequent values of each dimension in the period (one query per dimension, plus the total)."""
    events = _events(app_ids, period)
    total = events.count()
    result = []
    for dimension in dimensions:
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dimension!r}")
        top = []
        if total:
            top = (
                events.values(dimension)
                .annotate(n=Count("pk"))
                # Ties in a stable order on both databases (they sort NULL differently).
                .order_by("-n", F(dimension).asc(nulls_last=True))[:limit]
            )
        rows = [
            BreakdownRow(
                value=row[dimension],
                label=_label(dimension, row[dimension]),
                count=row["n"],
                share=row["n"] * 100 / total,
            )
            for row in top
        ]
        result.append(
            Breakdown(
                dimension=dimension,
                title=DIMENSIONS[dimension],
                rows=rows,
                other=total - sum(row.count for row in rows),
                total=total,
            )
        )
    return result


# --- Command outcomes and durations -----------------------------------------------------


@dataclass(frozen=True)
class CommandStats:
    runs: int  # command events in the period
    with_outcome: int  # those whose data says success true or false
    succeeded: int
    timed: int  # those whose data has a numeric duration_ms
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None

    @property
    def success_rate(self) -> float | None:
        """Percent of runs with an outcome that succeeded; None when none reported one."""
        return self.succeeded * 100 / self.with_outcome if self.with_outcome else None


def _commands(app_ids: Sequence[int], period: TimeRange) -> QuerySet[Event]:
    return _events(app_ids, period).filter(event_type=COMMAND_EVENT_TYPE)


def command_stats(app_ids: Sequence[int], *, period: TimeRange) -> CommandStats:
    """Success rate and duration percentiles (nearest rank) of command events."""
    commands = _commands(app_ids, period)
    row = commands.aggregate(
        runs=Count("pk"),
        succeeded=Count("pk", filter=Q(data__success=True)),
        failed=Count("pk", filter=Q(data__success=False)),
        timed=Count("pk", filter=JSONIsNumber("data", "duration_ms")),
    )
    percentiles = duration_percentiles(commands, timed=row["timed"])
    return CommandStats(
        runs=row["runs"],
        with_outcome=row["succeeded"] + row["failed"],
        succeeded=row["succeeded"],
        timed=row["timed"],
        p50_ms=percentiles[0],
        p90_ms=percentiles[1],
        p99_ms=percentiles[2],
    )


def duration_percentiles(events: QuerySet[Event], *, timed: int) -> list[float | None]:
    """p50, p90 and p99 of data.duration_ms by nearest rank, identical on both databases.

    PostgreSQL computes them with percentile_disc. SQLite has no percentile
    function, so one query numbers the sorted durations and keeps the rows
    at the wanted ranks."""
    if timed == 0:
        return [None] * len(PERCENTILES)
    numeric = events.filter(JSONIsNumber("data", "duration_ms")).annotate(duration=_number("duration_ms"))
    if connection.vendor == "postgresql":
        row = numeric.aggregate(
            **{f"p{i}": PercentileDisc(F("duration"), fraction=p) for i, p in enumerate(PERCENTILES)}
        )
        return [row[f"p{i}"] for i in range(len(PERCENTILES))]
    # The same float arithmetic as PostgreSQL's percentile_disc: rank ceil(p * n).
    ranks = [max(1, math.ceil(p * timed)) for p in PERCENTILES]
    at_rank = dict(
        numeric.annotate(rank=Window(RowNumber(), order_by=F("duration").asc()))
        .filter(rank__in=ranks)
        .values_list("rank", "duration")
    )
    return [at_rank.get(rank) for rank in ranks]


@dataclass(frozen=True)
class CommandRow:
    command: str
    runs: int
    succeeded: int
    failed: int
    avg_ms: float | None

    @property
    def success_rate(self) -> float | None:
        reported = self.succeeded + self.failed
        return self.succeeded * 100 / reported if reported else None


def top_commands(app_ids: Sequence[int], *, period: TimeRange, limit: int = 10) -> list[CommandRow]:
    """The most run commands (data.command) with their outcomes and mean duration (one query)."""
    rows = (
        _commands(app_ids, period)
        .annotate(command=KeyTextTransform("command", "data"))
        .values("command")
        .annotate(
            runs=Count("pk"),
            succeeded=Count("pk", filter=Q(data__success=True)),
            failed=Count("pk", filter=Q(data__success=False)),
            avg_ms=Avg(_number("duration_ms")),
        )
        .order_by("-runs", "command")[:limit]
    )
    return [
        CommandRow(
            command=row["command"] if row["command"] is not None else "(none)",
            runs=row["runs"],
            succeeded=row["succeeded"],
            failed=row["failed"],
            avg_ms=row["avg_ms"],
        )
        for row in rows
    ]


# --- Organization: activity per app ----------------------------------------------------


@dataclass(frozen=True)
class AppActivity:
    app: App
    events: int
    users: int
    last_event_at: datetime | None


def app_activity(apps: Sequence[App], *, period: TimeRange) -> list[AppActivity]:
    """For each app, its events and users in the period and its latest event ever (two queries)."""
    app_ids = [app.pk for app in apps]
    counts = {
        row["app_id"]: row
        for row in _events(app_ids, period)
        .values("app_id")
        .annotate(events=Count("pk"), users=Count("user_id", distinct=True))
        .order_by()
    }
    # The newest event per app, read from the end of each app's index range.
    newest = Event.objects.filter(app_id=OuterRef("pk")).order_by("-timestamp").values("timestamp")[:1]
    last = dict(App.objects.filter(pk__in=app_ids).annotate(last=Subquery(newest)).values_list("pk", "last"))
    return [
        AppActivity(
            app=app,
            events=counts.get(app.pk, {}).get("events", 0),
            users=counts.get(app.pk, {}).get("users", 0),
            last_event_at=last.get(app.pk),
        )
        for app in apps
    ]


def last_event_at(app_ids: Sequence[int]) -> datetime | None:
    """When the newest stored event of these apps happened."""
    return Event.objects.filter(app_id__in=list(app_ids)).aggregate(last=Max("timestamp"))["last"]


# --- The recent-events explorer ---------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first list: an event's timestamp and primary key."""

    timestamp: datetime
    pk: int

    _FORMAT = re.compile(r"(\d{1,19})-(\d{1,19})\Z")

    def encode(self) -> str:
        micros = (self.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return f"{micros}-{self.pk}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor in `text`, or None when it is not one."""
        match = cls._FORMAT.match(text or "")
        if match is None:
            return None
        pk = int(match[2])
        if pk > MAX_PK:  # the database would refuse it as out of range
            return None
        try:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(match[1]))
        except OverflowError:
            return None
        return cls(timestamp=moment, pk=pk)


@dataclass(frozen=True)
class EventFilters:
    event_type: str = ""
    user_id: str = ""
    session_id: str = ""
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    newer: Cursor | None  # pass as `after` for the page before this one
    older: Cursor | None  # pass as `before` for the page after this one


def recent_events(
    app_id: int,
    *,
    filters: EventFilters,
    before: Cursor | None = None,
    after: Cursor | None = None,
    limit: int = 50,
) -> EventPage:
    """One page of the app's events, newest first, by keyset over (timestamp, id).

    Without a cursor it is the newest page; `before` pages to older events,
    `after` to newer ones. Each page is one indexed query of limit + 1 rows."""
    events = Event.objects.filter(app_id=app_id).defer("data")
    if filters.event_type:
        events = events.filter(event_type=filters.event_type)
    if filters.user_id:
        events = events.filter(user_id=filters.user_id)
    if filters.session_id:
        events = events.filter(session_id=filters.session_id)
    if filters.start is not None:
        events = events.filter(timestamp__gte=filters.start)
    if filters.end is not None:
        events = events.filter(timestamp__lt=filters.end)
    # A one-line summary of what happened, for the list: the command or feature name.
    events = events.annotate(
        command=KeyTextTransform("command", "data"), feature=KeyTextTransform("feature", "data")
    )

    if after is not None:
        newer_first = events.filter(
            Q(timestamp__gt=after.timestamp) | Q(timestamp=after.timestamp, pk__gt=after.pk)
        ).order_by("timestamp", "pk")
        rows = list(newer_first[: limit + 1])
        more_newer = len(rows) > limit
        rows = rows[:limit][::-1]
        return EventPage(
            events=rows,
            newer=_cursor(rows[0]) if rows and more_newer else None,
            older=_cursor(rows[-1]) if rows else None,
        )

    if before is not None:
        events = events.filter(Q(timestamp__lt=before.timestamp) | Q(timestamp=before.timestamp, pk__lt=before.pk))
    rows = list(events.order_by("-timestamp", "-pk")[: limit + 1])
    more_older = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        events=rows,
        newer=_cursor(rows[0]) if rows and before is not None else None,
        older=_cursor(rows[-1]) if rows and more_older else None,
    )


def _cursor(event: Event) -> Cursor:
    return Cursor(timestamp=event.timestamp, pk=event.pk)


def recent_event_types(app_id: int, *, sample: int = 1000, limit: int = 50) -> list[str]:
    """The event types among the app's latest `sample` events, most frequent first,
    for the explorer's suggestions: a bounded read of the index, whatever the app's size."""
    latest = Event.objects.filter(app_id=app_id).order_by("-timestamp").values("pk")[:sample]
    return list(
        Event.objects.filter(pk__in=latest)
        .values_list("event_type", flat=True)
        .annotate(n=Count("pk"))
        .order_by("-n", "event_type")[:limit]
    )


def get_event(app_id: int, event_id) -> Event | None:
    """The app's event with this event_id (a UUID), or None."""
    return Event.objects.filter(app_id=app_id, event_id=event_id).first()


def event_document(event: Event) -> dict:
    """The stored event in the shape the SDK sent it (PROTOCOL.md, Body), for display."""

    def present(**fields):
        return {key: value for key, value in fields.items() if value not in ("", None)}

    return {
        "schema_version": event.schema_version,
        "event_id": str(event.event_id),
        "timestamp": event.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "service": present(
            name=event.service_name,
            version=event.service_version,
            language=event.service_language,
            language_version=event.service_language_version,
        ),
        "user_id": event.user_id,
        **({"session_id": event.session_id} if event.session_id else {}),
        "environment": {
            **present(os=event.os, os_version=event.os_version, arch=event.arch),
            **({"ci": event.ci} if event.ci is not None else {}),
            **present(shell=event.shell),
        },
        "event": {"type": event.event_type, **present(category=event.category), "data": event.data},
        "metadata": {"sdk_version": event.sdk_version},
    }
