"""Funnels: how many users did an app's ordered steps within a conversion window.

The definition (docs/insights.md, Funnels, and the funnel page say the same):

- A step matches an event of its type; a step with a name matches only
  command_execution events whose `data.command`, or feature_used events whose
  `data.feature`, is that string (telemetry.models.step_name). The filter
  bar's filters apply to every event.
- A user enters at their first step-1 event in the range [start, end).
- A user who reached step k-1 at t(k-1) reaches step k at their first step-k
  event at or after t(k-1) and before t(1) + window; strictly after t(k-1)
  when step k could match an earlier step's event (same type, and the same
  name or no name on either), so one event never counts for two steps.
  Events after the range still count, up to t(1) + window.
- Per step: the users who reached it, its share of step 1's users and of the
  previous step's, and the median of t(k) - t(k-1) over its users (for an
  even count, the mean of the two middle values).

Taking the earliest event for every step is the best choice, so "reaches
step k" is the same as "has some events for steps 1..k in that order within
the window of entering"; the tests check both readings on random events.

PostgreSQL computes it in one statement: the users' first step-1 events in
the range, then for each user and later step one probe of the index
event_funnel_step (migration telemetry 0014) for the first matching event in
[t(k-1), t(1) + window), then counts and medians. SQLite reads the step events
of [start, end + window) through the (app, timestamp) index and walks them in
Python with `walk`, the same rule.

The users who entered at least one conversion window before the current UTC
day began reached every step they ever will within closed days. Their
part of the result (users per step and the times between steps) is kept in
Django's cache under the closed days' rollup_version token (dashboard.stats),
which changes with any event stored or deleted on those days. The users who
entered later are read on every view: a few days' entries, not the range's.
"""

from __future__ import annotations

import hashlib
import statistics
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from dashboard import stats
from dashboard.filters import Filters
from dashboard.models import MAX_STEPS, WINDOWS, Funnel
from organizations.models import App
from organizations.services import record_audit
from telemetry import daily, replicas
from telemetry.models import STEP_NAME_MAX, STEP_NAME_SQL, STEP_NAMED_TYPES, Event, step_name
from telemetry.periods import UTC, start_of_day

# How long a result of closed days stays in the cache: its key names the data
# it was computed from, so this only bounds the cache's size.
RESULT_TIMEOUT = 24 * 3600
MICROSECOND = timedelta(microseconds=1)


# --- Definition ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    type: str
    name: str = ""  # the command (command_execution) or feature (feature_used); "" for any

    @property
    def label(self) -> str:
        return f"{self.type}: {self.name}" if self.name else self.type

    def matches(self, event_type: str, name: str | None) -> bool:
        """Whether an event of this type, with this step name (telemetry.models.step_name), is this step's."""
        return event_type == self.type and (not self.name or name == self.name)

    def overlaps(self, other: Step) -> bool:
        """Whether one event could be both steps'."""
        return self.type == other.type and (not self.name or not other.name or self.name == other.name)


def steps_of(raw: Iterable[dict]) -> list[Step]:
    """A saved funnel's steps (Funnel.steps) as Steps."""
    return [Step(type=str(item.get("type", "")), name=str(item.get("name") or "")) for item in raw]


def strictness(steps: Sequence[Step]) -> list[bool]:
    """Per step, whether it must come strictly after the previous one: it could match an earlier step's event."""
    return [any(step.overlaps(earlier) for earlier in steps[:k]) for k, step in enumerate(steps)]


def window_label(seconds: int) -> str:
    return dict(WINDOWS).get(seconds) or f"{seconds} seconds"


def span_text(seconds: float | None) -> str:
    """A time between steps as a person reads it: '0 s', '42 s', '4 min 12 s', '3 h 5 min', '2 d 4 h'."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return "under 1 s" if seconds > 0 else "0 s"
    whole = round(seconds)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= size:
            big, rest = divmod(whole, size)
            rest //= smaller_size
            return f"{big} {unit} {rest} {smaller}" if rest else f"{big} {unit}"
    return f"{whole} s"


@dataclass(frozen=True)
class StepResult:
    step: Step
    users: int
    from_first: float | None  # users / step 1's users; None when nobody entered
    from_previous: float | None  # users / the previous step's users
    median_seconds: float | None  # median time since the previous step; None for step 1 or without users


@dataclass(frozen=True)
class FunnelResult:
    steps: list[StepResult]
    start: datetime
    end: datetime
    window: timedelta

    @property
    def entered(self) -> int:
        return self.steps[0].users if self.steps else 0

    @property
    def completed(self) -> int:
        return self.steps[-1].users if self.steps else 0


@dataclass
class Reached:
    """Per step, the users who reached it and their times since the previous step
    (µs; none for step 1): what a part of the entries adds to the funnel."""

    users: list[int]
    gaps: list[array]  # array("q") per step

    @classmethod
    def none(cls, n: int) -> Reached:
        return cls(users=[0] * n, gaps=[array("q") for _ in range(n)])

    def add(self, other: Reached) -> None:
        for k, users in enumerate(other.users):
            self.users[k] += users
            self.gaps[k].extend(other.gaps[k])

    def medians(self) -> list[float | None]:
        return [float(statistics.median(gaps)) if gaps else None for gaps in self.gaps]


def _result(steps: Sequence[Step], reached: Reached, *, start, end, window) -> FunnelResult:
    users, medians_us = reached.users, reached.medians()
    rows = []
    for k, step in enumerate(steps):
        first, previous = users[0], users[k - 1] if k else None
        rows.append(
            StepResult(
                step=step,
                users=users[k],
                from_first=users[k] / first if first else None,
                from_previous=(users[k] / previous if previous else None) if k else None,
                median_seconds=None if medians_us[k] is None else medians_us[k] / 1e6,
            )
        )
    return FunnelResult(steps=rows, start=start, end=end, window=window)


# --- Computing -------------------------------------------------------------------------------


def compute(
    app_id: int,
    steps: Sequence[Step],
    *,
    window: timedelta,
    start: datetime,
    end: datetime,
    filters: Filters = Filters(),
    now: datetime | None = None,
) -> FunnelResult:
    """The funnel's users per step, conversions and median times over [start, end) (module docstring).

    The users who entered before `split` (a window before the current UTC day
    began) reached every step they will within closed days: their part is read
    once and kept in the cache. Only the users who entered after it are read on
    every view."""
    steps = list(steps)
    if not steps:
        return FunnelResult(steps=[], start=start, end=end, window=window)
    now = now or timezone.now()
    split = min(max(start_of_day(now.astimezone(UTC).date()) - window, start), end)
    reached = Reached.none(len(steps))
    if start < split:
        reached.add(_closed_part(app_id, steps, window, start, split, filters, now=now))
    if split < end:
        reached.add(_reached(app_id, steps, window, split, end, filters, entered_from=start))
    return _result(steps, reached, start=start, end=end, window=window)


def _closed_part(app_id, steps, window, start, end, filters, *, now: datetime) -> Reached:
    """The users who entered in [start, end), whose windows all end before the current day: from the cache when it can."""
    key = _cache_key(app_id, steps, window, start, end, filters, now=now)
    if key is not None:
        found = cache.get(key)
        if found is not None:
            return found
    reached = _reached(app_id, steps, window, start, end, filters)
    if key is not None:
        cache.set(key, reached, RESULT_TIMEOUT)
    return reached


def _reached(app_id, steps, window, start, end, filters, *, entered_from: datetime | None = None) -> Reached:
    """The users whose first step-1 event in [entered_from or start, end) lies in [start, end), and how far they got."""
    if connection.vendor == "postgresql":
        return _reached_postgresql(app_id, steps, window, start, end, filters, entered_from=entered_from)
    return _reached_python(app_id, steps, window, start, end, filters, entered_from=entered_from)


def _cache_key(app_id, steps, window, start, end, filters, *, now: datetime) -> str | None:
    """The cache key of a part whose events all lie in closed days, named by their
    rollup_version; None when it reads the current day or a day whose rollups are stale."""
    span_end = end + window
    if span_end > start_of_day(now.astimezone(UTC).date()):
        return None
    first, last = start.astimezone(UTC).date(), (span_end - MICROSECOND).astimezone(UTC).date()
    version = stats.rollup_version([app_id], first, last)
    if version.stale:
        # Days after the range were not made fresh by the page (stats.with_daily_rollups).
        daily.build(version.stale)
        version = stats.rollup_version([app_id], first, last)
        if version.stale:
            return None  # changed again meanwhile: computed without the cache this time
    definition = (app_id, [(s.type, s.name) for s in steps], window, start, end, filters.items(), version.token)
    return "funnel:reached:" + hashlib.blake2b(repr(definition).encode(), digest_size=16).hexdigest()


def walk(
    events: Iterable[tuple[datetime, str, str | None]], steps: Sequence[Step], *, start, end, window, strict=None
) -> list[datetime]:
    """One user's times of reaching each step (as many as reached), from their
    events as (timestamp, type, step name) in time order; `strict` is strictness(steps)."""
    events = list(events)
    strict = strictness(steps) if strict is None else strict
    entered = next((t for t, kind, name in events if start <= t < end and steps[0].matches(kind, name)), None)
    if entered is None:
        return []
    times, deadline = [entered], entered + window
    for k in range(1, len(steps)):
        previous = times[-1]
        found = next(
            (
                t
                for t, kind, name in events
                if (t > previous if strict[k] else t >= previous) and t < deadline and steps[k].matches(kind, name)
            ),
            None,
        )
        if found is None:
            break
        times.append(found)
    return times


def _aggregate(per_user: Iterable[list[datetime]], n: int) -> Reached:
    reached = Reached.none(n)
    for times in per_user:
        for k, moment in enumerate(times):
            reached.users[k] += 1
            if k:
                reached.gaps[k].append((moment - times[k - 1]) // MICROSECOND)
    return reached


def _reached_python(app_id, steps, window, start, end, filters, *, entered_from=None) -> Reached:
    """SQLite: the step events of [entered_from or start, end + window), walked per user."""
    since = start if entered_from is None else entered_from
    rows = (
        Event.objects.filter(filters.q(), app_id=app_id, timestamp__gte=since, timestamp__lt=end + window)
        .filter(event_type__in=sorted({step.type for step in steps}))
        .order_by("user_id", "timestamp")
        .values_list("user_id", "timestamp", "event_type", "data")
    )
    strict = strictness(steps)
    per_user = (
        walk(
            ((moment, kind, step_name(kind, data)) for _, moment, kind, data in events),
            steps,
            start=since,
            end=end,
            window=window,
            strict=strict,
        )
        for _, events in groupby(rows.iterator(chunk_size=2000), key=lambda row: row[0])
    )
    return _aggregate((times for times in per_user if times and times[0] >= start), len(steps))


def _step_condition(step: Step) -> tuple[str, list]:
    """SQL matching a step's events, as event_funnel_step can serve it."""
    if step.name:
        return f"event_type = %s AND ({STEP_NAME_SQL}) = %s", [step.type, step.name]
    if step.type in STEP_NAMED_TYPES:
        # Any command (or feature): most of a user's events, found at once through (app, user, timestamp).
        return "event_type = %s", [step.type]
    return f"event_type = %s AND ({STEP_NAME_SQL}) IS NULL", [step.type]  # NULL for every other type


def _filter_condition(filters: Filters) -> tuple[str, list]:
    """The filter bar's filters (Filters.q()) as SQL on the events table, with a leading AND."""
    if not filters.active:
        return "", []
    query = Event.objects.filter(filters.q()).query
    sql, params = query.get_compiler(connection=connection).compile(query.where)
    return f" AND {sql}", list(params)


def _reached_postgresql(app_id, steps, window, start, end, filters, *, entered_from=None) -> Reached:
    """PostgreSQL: one statement, one index probe per entered user and later step
    (and one more per user, for an earlier step-1 event, with entered_from)."""
    table = Event._meta.db_table
    where_filters, filter_params = _filter_condition(filters)
    strict = strictness(steps)
    first_sql, first_params = _step_condition(steps[0])
    entries = (
        f'SELECT user_id, min("timestamp") AS t FROM {table} '
        f'WHERE app_id = %s AND {first_sql} AND "timestamp" >= %s AND "timestamp" < %s{where_filters} '
        f"GROUP BY user_id"
    )
    params: list = [app_id, *first_params, start, end, *filter_params]
    if entered_from is None:
        sql = [f"WITH s1 AS ({entries}) SELECT count(*)"]
    else:
        # Users who entered in [start, end) and not before, back to entered_from.
        # A LATERAL probe rather than NOT EXISTS: one index lookup per entry, whatever
        # the planner's estimates (an anti join once scanned every earlier entry per user).
        sql = [
            f"WITH entries AS ({entries}), s1 AS (SELECT e.user_id, e.t FROM entries e LEFT JOIN LATERAL ("
            f"SELECT 1 AS found FROM {table} WHERE app_id = %s AND {first_sql} AND user_id = e.user_id "
            f'AND "timestamp" >= %s AND "timestamp" < %s{where_filters} LIMIT 1) earlier ON true '
            f"WHERE earlier.found IS NULL) SELECT count(*)"
        ]
        params += [app_id, *first_params, entered_from, start, *filter_params]
    joins, join_params = [], []
    for k in range(1, len(steps)):
        step_sql, step_params = _step_condition(steps[k])
        after = ">" if strict[k] else ">="
        joins.append(
            f'LEFT JOIN LATERAL (SELECT "timestamp" AS t FROM {table} '
            f"WHERE app_id = %s AND {step_sql} AND user_id = s1.user_id "
            f'AND "timestamp" {after} s{k}.t AND "timestamp" < s1.t + %s{where_filters} '
            f'ORDER BY "timestamp" LIMIT 1) s{k + 1} ON true'
        )
        join_params += [app_id, *step_params, window, *filter_params]
        # Whole microseconds: extract(epoch) of an interval is exact numeric.
        sql.append(
            f", count(s{k + 1}.t), array_agg((extract(epoch FROM s{k + 1}.t - s{k}.t) * 1000000)::bigint)"
            f" FILTER (WHERE s{k + 1}.t IS NOT NULL)"
        )
    sql.append(" FROM s1 " + " ".join(joins))
    with replicas.read_connection(Event).cursor() as cursor:
        cursor.execute("".join(sql), params + join_params)
        row = cursor.fetchone()
    reached = Reached.none(len(steps))
    reached.users[0] = int(row[0])
    for k in range(1, len(steps)):
        reached.users[k] = int(row[2 * k - 1])
        reached.gaps[k] = array("q", row[2 * k] or ())
    return reached


def suggestions(app_id: int, *, sample: int = 2000) -> tuple[list[str], list[str]]:
    """Event types, and commands and features, among the app's latest `sample` events,
    most frequent first: the funnel form's suggestions (a bounded read of the (app, timestamp) index)."""
    types: dict[str, int] = {}
    names: dict[str, int] = {}
    latest = Event.objects.filter(app_id=app_id).order_by("-timestamp").values_list("event_type", "data")[:sample]
    for kind, data in latest:
        types[kind] = types.get(kind, 0) + 1
        name = step_name(kind, data)
        if name and len(name) <= STEP_NAME_MAX:
            names[name] = names.get(name, 0) + 1
    return _by_count(types), _by_count(names)


def _by_count(counts: dict[str, int]) -> list[str]:
    return sorted(counts, key=lambda value: (-counts[value], value))


# --- Saving -----------------------------------------------------------------------------------


def describe(steps: Sequence[Step], window_seconds: int) -> str:
    """A funnel's definition in words, for the audit log (which shows a change as "old → new", so no arrows here)."""
    return ", then ".join(step.label for step in steps) + f"; within {window_label(window_seconds)}"


def _as_json(steps: Sequence[Step]) -> list[dict]:
    return [{"type": step.type, "name": step.name} for step in steps]


def create_funnel(app: App, *, name: str, steps: Sequence[Step], window_seconds: int, by=None) -> Funnel:
    """Save a new funnel of the app, recorded in the audit log as `funnel.create`."""
    assert 2 <= len(steps) <= MAX_STEPS, "dashboard.funnel_forms.FunnelForm validates the steps"
    with transaction.atomic():
        funnel = Funnel.objects.create(
            app=app,
            name=name,
            steps=_as_json(steps),
            window_seconds=window_seconds,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
        record_audit(
            app.organization,
            action="funnel.create",
            target=app.public_id,
            actor=by,
            details={"funnel": name, "steps": describe(steps, window_seconds)},
        )
    return funnel


def update_funnel(funnel: Funnel, *, name: str, steps: Sequence[Step], window_seconds: int, by=None) -> bool:
    """Change a funnel; False when nothing changed. Recorded as `funnel.update` with what changed."""
    assert 2 <= len(steps) <= MAX_STEPS, "dashboard.funnel_forms.FunnelForm validates the steps"
    old_name, old_definition = funnel.name, describe(steps_of(funnel.steps), funnel.window_seconds)
    new_definition = describe(steps, window_seconds)
    if old_name == name and old_definition == new_definition:
        return False
    details: dict = {"funnel": name}
    if old_name != name:
        details["name"] = {"from": old_name, "to": name}
    if old_definition != new_definition:
        details["steps"] = {"from": old_definition, "to": new_definition}
    with transaction.atomic():
        funnel.name, funnel.steps, funnel.window_seconds = name, _as_json(steps), window_seconds
        funnel.updated_at = timezone.now()
        funnel.save(update_fields=["name", "steps", "window_seconds", "updated_at"])
        record_audit(funnel.app.organization, action="funnel.update", target=funnel.app.public_id, actor=by, details=details)
    return True


def delete_funnel(funnel: Funnel, *, by=None) -> None:
    """Delete a funnel (its events stay), recorded as `funnel.delete`."""
    with transaction.atomic():
        details = {"funnel": funnel.name, "steps": describe(steps_of(funnel.steps), funnel.window_seconds)}
        record_audit(funnel.app.organization, action="funnel.delete", target=funnel.app.public_id, actor=by, details=details)
        funnel.delete()
