"""Requests per API key per minute, shared by every worker and instance.

The same scheme as ingest's per-app rate (telemetry.limits): one atomic round
trip per request, an INCR in Redis when REDIS_URL is set, otherwise one upsert
on a one-row-per-key table. telemetry.limits counts apps in its own table, so
keys get theirs."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import RedisError

from api.errors import ApiError
from api.models import ApiRequestCounter
from telemetry import limits

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateStatus:
    limit: int
    count: int
    reset_at: int  # unix seconds at which the window ends

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def enforce(key_pk: int, *, now: float | None = None) -> RateStatus:
    """Count the request against the key's minute; ApiError(429) with Retry-After past the limit."""
    now = time.time() if now is None else now
    limit = settings.CLACKS_API_REQUESTS_PER_MINUTE
    window_start = int(now) // WINDOW_SECONDS * WINDOW_SECONDS
    if settings.CLACKS_SHARED_STORE == "redis":
        count = _count_redis(key_pk, window_start)
    else:
        count, window_start = _count_database(key_pk, window_start)
    status = RateStatus(limit=limit, count=count, reset_at=window_start + WINDOW_SECONDS)
    if count > limit:
        retry_after = max(1, math.ceil(status.reset_at - now))
        raise ApiError(
            429, "rate_limit_exceeded", f"This API key may make {limit} requests per minute; try again in {retry_after} s.",
            retry_after=retry_after, headers=status.headers(),
        )  # fmt: skip
    return status


def _count_redis(key_pk: int, window_start: int) -> int:
    from django_redis import get_redis_connection

    key = f"{settings.CLACKS_REDIS_KEY_PREFIX}:api-rate:{key_pk}:{window_start}"
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        pipe.incr(key)
        pipe.expireat(key, window_start + 2 * WINDOW_SECONDS)
        count, _ = pipe.execute()
    except RedisError:
        raise ApiError(503, "storage_unavailable", "The rate limit store is unavailable; try again shortly.",
                       retry_after=settings.CLACKS_RETRY_AFTER_SECONDS) from None  # fmt: skip
    return int(count)


def _count_database(key_pk: int, window_start: int) -> tuple[int, int]:
    """(count, window start) after one upsert; the key's row starts over when a newer minute arrives."""
    return limits.count_in_table_window(ApiRequestCounter, "key_id", key_pk, window_start)
