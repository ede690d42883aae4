"""Plan limits: ingest requests per app per minute, new events per organization per month.

Every worker and every instance shares the counters: Redis when REDIS_URL is
set, the database otherwise. Each check is one atomic round trip (an INCR, a
Lua script, or one upsert), whatever the size of the batch, so limits hold
under any concurrency without locks held across the batch.

The monthly quota admits or refuses whole batches. A batch is admitted when
the organization is under its quota as the batch arrives; its new events are
counted in full, even the ones past the quota, and the next batch gets 429
until the month ends. So an organization stores at most one batch (1,000
events) beyond its quota. Storing part of a batch would be exact but worse for
the sender: the SDK drops the rejected events of a 207 for good, while it
keeps a refused batch and sends it again later (docs/protocol.md, What the telemetry-kit SDK 0.3 does on the wire).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone as dt_timezone

from django.conf import settings
from django.db import DatabaseError, connections, router
from django.db.models import F
from redis.exceptions import RedisError

from organizations.models import Organization, Tier
from telemetry.databases import events_atomic, events_connection
from telemetry.errors import IngestError, storage_unavailable
from telemetry.models import MonthlyUsage, Plan, RequestCounter

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# Redis keeps a month's count this long after the month ends, for the dashboard.
MONTH_KEY_GRACE_SECONDS = 40 * 24 * 3600


# --- Plans ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    monthly_events: int | None  # None: no monthly quota


_plans_lock = threading.Lock()
_plans: tuple[float, dict[str, tuple[int | None, int | None]]] | None = None


def _plan_overrides() -> dict[str, tuple[int | None, int | None]]:
    """The admin's Plan rows, read at most once per CLACKS_APP_CACHE_SECONDS per process,
    so ingest does not pay a query for them on every request."""
    global _plans
    cached = _plans
    now = time.monotonic()
    if cached is not None and now < cached[0]:
        return cached[1]
    rows = {
        tier: (per_minute, monthly)
        for tier, per_minute, monthly in Plan.objects.values_list("tier", "requests_per_minute", "monthly_events")
    }
    with _plans_lock:
        _plans = (now + settings.CLACKS_APP_CACHE_SECONDS, rows)
    return rows


def forget_plans() -> None:
    """Re-read the Plan rows on next use (this process; others within the cache time)."""
    global _plans
    with _plans_lock:
        _plans = None


def ensure_plans() -> None:
    """A Plan row for every tier, empty fields following the settings."""
    existing = set(Plan.objects.values_list("tier", flat=True))
    Plan.objects.bulk_create(
        [Plan(tier=tier) for tier in Tier.values if tier not in existing], ignore_conflicts=True
    )


def plan_defaults(tier: str) -> Limits:
    """The tier's limits as the settings give them (CLACKS_PLANS). An unknown tier gets the free plan's."""
    defaults = settings.CLACKS_PLANS.get(tier) or settings.CLACKS_PLANS[Tier.FREE]
    return Limits(
        requests_per_minute=defaults.requests_per_minute,
        monthly_events=defaults.monthly_events or None,
    )


def plan_limits(tier: str) -> Limits:
    """The tier's limits: each field of its Plan row when set, else the setting."""
    defaults = plan_defaults(tier)
    per_minute, monthly = _plan_overrides().get(tier, (None, None))
    return Limits(
        requests_per_minute=per_minute if per_minute is not None else defaults.requests_per_minute,
        monthly_events=(monthly or None) if monthly is not None else defaults.monthly_events,
    )


# --- Requests per minute ------------------------------------------------------------------


@dataclass(frozen=True)
class RateStatus:
    limit: int
    count: int  # requests in the window, this one included
    reset_at: int  # unix seconds at which the window ends

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        # X-RateLimit-Reset is a unix time, as the reference telemetry-kit server sends it.
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def count_request(app_pk: int, *, tier: str, now: float | None = None) -> RateStatus:
    """Count one ingest request in the app's current minute; admitted or not, it counts."""
    now = time.time() if now is None else now
    limit = plan_limits(tier).requests_per_minute
    window_start = int(now) // WINDOW_SECONDS * WINDOW_SECONDS
    if settings.CLACKS_SHARED_STORE == "redis":
        count = _count_request_redis(app_pk, window_start)
    else:
        count, window_start = _count_request_database(app_pk, window_start)
    return RateStatus(limit=limit, count=count, reset_at=window_start + WINDOW_SECONDS)


def enforce_rate(app_pk: int, *, tier: str, now: float | None = None) -> RateStatus:
    """Count the request; IngestError(429) with the rate headers when it is one too many."""
    now = time.time() if now is None else now
    status = count_request(app_pk, tier=tier, now=now)
    if not status.allowed:
        retry_after = max(1, math.ceil(status.reset_at - now))
        raise IngestError(
            429,
            "rate_limit_exceeded",
            f"This application may send {status.limit} requests per minute; try again in {retry_after} s.",
            retry_after=retry_after,
            headers=status.headers(),
        )
    return status


def _count_request_redis(app_pk: int, window_start: int) -> int:
    key = f"{settings.CLACKS_REDIS_KEY_PREFIX}:rate:{app_pk}:{window_start}"
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expireat(key, window_start + 2 * WINDOW_SECONDS)
        count, _ = pipe.execute()
    except RedisError as exc:
        raise _redis_down(exc) from None
    return int(count)


def _count_request_database(app_pk: int, window_start: int) -> tuple[int, int]:
    return count_in_table_window(RequestCounter, "app_id", app_pk, window_start)


def count_in_table_window(model, key_column: str, key: int, window_start: int) -> tuple[int, int]:
    """(count, window start) after one upsert on `model`'s row for `key`, in the database
    that holds its table. The row starts
    over when a newer minute arrives; a request stamped with an older minute (another
    instance's clock a little behind) counts in the row's current one."""
    table = model._meta.db_table
    newer = f"{table}.window_start < excluded.window_start"
    with connections[router.db_for_write(model)].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key_column}, window_start, count) VALUES (%s, %s, 1) "
            f"ON CONFLICT ({key_column}) DO UPDATE SET "
            f"count = CASE WHEN {newer} THEN 1 ELSE {table}.count + 1 END, "
            f"window_start = CASE WHEN {newer} THEN excluded.window_start ELSE {table}.window_start END "
            f"RETURNING count, window_start",
            [key, window_start],
        )
        count, start = cursor.fetchone()
    return int(count), int(start)


# --- Events per month ---------------------------------------------------------------------


def month_of(moment: datetime) -> date:
    """First day of the UTC calendar month holding the moment."""
    moment = moment.astimezone(dt_timezone.utc)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_end_timestamp(month: date) -> int:
    """Unix seconds at which the month's quota starts over."""
    following = next_month(month)
    return int(datetime(following.year, following.month, 1, tzinfo=dt_timezone.utc).timestamp())


@dataclass
class EventReservation:
    """Room held under an organization's quota for a batch being stored."""

    org_pk: int
    month: date
    reserved: int  # 0 when the plan has no quota
    stored: int = 0

    def record_stored(self, count: int) -> None:
        """How many of the batch's events were new; the rest of the room is given back."""
        self.stored = count


def reserve_events(org_pk: int, *, tier: str, events: int, now: float | None = None) -> EventReservation:
    """Hold room for `events` new events, or IngestError(429) when this month's quota
    is used up. Admitted while the organization is under its quota (see the module
    docstring); checking and adding are one atomic step, so concurrent batches
    cannot all slip in under the same count."""
    now = time.time() if now is None else now
    month = month_of(datetime.fromtimestamp(now, tz=dt_timezone.utc))
    quota = plan_limits(tier).monthly_events
    if quota is None:
        return EventReservation(org_pk=org_pk, month=month, reserved=0)
    if settings.CLACKS_SHARED_STORE == "redis":
        admitted = _reserve_redis(org_pk, month, events=events, quota=quota)
    else:
        admitted = _reserve_database(org_pk, month, events=events, quota=quota)
    if not admitted:
        retry_after = max(1, math.ceil(month_end_timestamp(month) - now))
        raise IngestError(
            429,
            "quota_exceeded",
            f"This organization has used its quota of {quota} new events for {month:%B %Y}; "
            f"the quota starts over in {retry_after} s (on the 1st, 00:00 UTC).",
            retry_after=retry_after,
        )
    return EventReservation(org_pk=org_pk, month=month, reserved=events)


def release_events(reservation: EventReservation, *, count: int) -> None:
    """Give back room reserved but not used (duplicates, rejected events, a failed batch).

    Never raises: the batch's answer matters more than the count being exact, and
    a release that fails only leaves the count higher than it should be."""
    if count <= 0:
        return
    try:
        if settings.CLACKS_SHARED_STORE == "redis":
            _redis().decrby(_month_key(reservation.org_pk, reservation.month), count)
        else:
            with _counter_transaction():
                MonthlyUsage.objects.filter(organization_id=reservation.org_pk, month=reservation.month).update(
                    events=F("events") - count
                )
    except (DatabaseError, RedisError) as exc:
        logger.warning(
            "could not give back %d events of org #%d's quota: %s", count, reservation.org_pk, exc.__class__.__name__
        )


@contextmanager
def event_quota(org_pk: int, *, tier: str, events: int, now: float | None = None) -> Iterator[EventReservation]:
    """Hold room for a batch while it is stored (IngestError(429) past the quota).

    The caller calls .record_stored(new events) on the reservation; whatever was
    not stored is given back, all of it when storing raises."""
    reservation = reserve_events(org_pk, tier=tier, events=events, now=now)
    try:
        yield reservation
    finally:
        release_events(reservation, count=reservation.reserved - reservation.stored)


def _month_key(org_pk: int, month: date) -> str:
    return f"{settings.CLACKS_REDIS_KEY_PREFIX}:events:{org_pk}:{month:%Y-%m}"


# Admit when the count so far is under the quota, adding the batch; -1 otherwise.
_RESERVE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return -1 end
used = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return used
"""


def _reserve_redis(org_pk: int, month: date, *, events: int, quota: int) -> bool:
    client = _redis()
    expires = month_end_timestamp(month) + MONTH_KEY_GRACE_SECONDS
    try:
        used = client.register_script(_RESERVE_LUA)(keys=[_month_key(org_pk, month)], args=[quota, events, expires])
    except RedisError as exc:
        raise _redis_down(exc) from None
    return int(used) >= 0


def _reserve_database(org_pk: int, month: date, *, events: int, quota: int) -> bool:
    """One upsert: it adds the batch only while the count is under the quota, under
    the row's lock, and returns no row when it refuses."""
    table = MonthlyUsage._meta.db_table
    with _counter_transaction(), events_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, month, events) VALUES (%s, %s, %s) "
            f"ON CONFLICT (organization_id, month) DO UPDATE SET events = {table}.events + excluded.events "
            f"WHERE {table}.events < %s "
            f"RETURNING events",
            [org_pk, events_connection.ops.adapt_datefield_value(month), events, quota],
        )
        return cursor.fetchone() is not None


@contextmanager
def _counter_transaction() -> Iterator[None]:
    """A transaction that does not wait for its WAL flush on PostgreSQL.

    A crash may forget the last fraction of a second of quota counts (the events
    themselves are committed durably by ingest); in exchange a batch does not
    wait for a disk sync of its counter, which costs more than the statement."""
    with events_atomic():
        if events_connection.vendor == "postgresql":
            with events_connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


# --- What the dashboard shows --------------------------------------------------------------


@dataclass(frozen=True)
class UsageSummary:
    month: date
    used: int | None  # None: not counted, the plan having no quota
    quota: int | None  # None: no quota
    resets_at: datetime
    known: bool = True  # False when the counter could not be read (Redis down)

    @property
    def remaining(self) -> int | None:
        return None if self.quota is None or self.used is None else max(0, self.quota - self.used)

    @property
    def percent(self) -> int | None:
        """Share of the quota used, 0-100 (capped: one batch may pass the quota)."""
        if self.quota is None or self.used is None:
            return None
        return min(100, math.floor(self.used * 100 / self.quota))

    @property
    def exceeded(self) -> bool:
        return self.remaining == 0


def monthly_usage(org: Organization, *, now: datetime | None = None) -> UsageSummary:
    """New events the organization stored this calendar month (UTC) against its quota.
    Without a quota nothing is counted (ingest skips the round trip), so used is None."""
    now = now or datetime.now(tz=dt_timezone.utc)
    month = month_of(now)
    quota = plan_limits(org.tier).monthly_events
    known = True
    if quota is None:
        used = None
    elif settings.CLACKS_SHARED_STORE == "redis":
        try:
            used = int(_redis().get(_month_key(org.pk, month)) or 0)
        except RedisError as exc:
            logger.warning("usage for %s unavailable: %s", org.public_id, exc.__class__.__name__)
            used, known = None, False
    else:
        used = (
            MonthlyUsage.objects.filter(organization=org, month=month).values_list("events", flat=True).first() or 0
        )
    following = next_month(month)
    return UsageSummary(
        month=month,
        used=used,
        quota=quota,
        resets_at=datetime(following.year, following.month, 1, tzinfo=dt_timezone.utc),
        known=known,
    )


# --- Redis ------------------------------------------------------------------------------


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _redis_down(exc: Exception) -> IngestError:
    # The counters live in Redis: without them no limit can be told, so the client
    # keeps its events and retries, as for a database outage (docs/protocol.md, Responses).
    logger.warning("Redis unavailable for plan limits: %s", exc.__class__.__name__)
    return storage_unavailable()
