#!/usr/bin/env python3
"""Time every analytics page at whatever size is seeded: p50/p95 over repeated requests.

Pages are found by URL name (dashboard:org_overview, dashboard:app_overview,
dashboard:app_events, dashboard:event_detail) and requested through Django's
full stack (middleware, session, templates) with the test client, logged in
as a viewer of the organization, once per range preset for the pages that
take one. Timing is in-process: no socket, no gunicorn.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench .venv/bin/python bench/pages.py
    .venv/bin/python bench/pages.py --org-id org_acme --repeat 50 --path /api/stats/...

The organization defaults to "Clacks demo" (made by seed_events.py). DEBUG is
turned off unless set, as in production (DEBUG keeps every SQL query in memory).

Long ranges keep the figures of closed days in Django's cache (README,
"Storage and scaling"), so timed requests after the first find them there;
--cold-cache empties the cache before each timed request, which is what the
first view after any change of the closed days costs; --late-events stores
one event dated three days back before each timed request (through the
ingest path: this adds events to the database), which is what a view costs
while clients keep sending late events. --only org_overview
times only the pages whose name starts so. --hours-back 3 times them as if
it were three hours earlier: the current UTC day's share of the figures
depends on how much of it has passed, and the seeded events end when seeding
did, so compare runs with the same current day.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from ingest_load import percentile  # noqa: E402

TARGET_P95_MS = 150.0  # issue 6: every analytics page under 150 ms p95 at 10 M events
FALLBACK_PRESETS = ("24h", "7d", "30d", "90d")
BENCH_USER = "bench-viewer"


def setup_django() -> None:
    os.environ.setdefault("DEBUG", "False")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("CLACKS_MANIFEST_STATIC", "False")  # no collectstatic needed to render pages
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def turn_clock_back(hours: float) -> None:
    """Run Django's clock (django.utils.timezone.now) `hours` behind, so pages
    are timed as if it were then: the current UTC day's share of a range
    depends on how much of it has passed, and seeded events end when seeding
    did. The offset is the same in every run, so the clock never goes back
    between runs (sketches remember when they were built)."""
    if not hours:
        return
    from datetime import timedelta

    from django.utils import timezone

    real, offset = timezone.now, timedelta(hours=hours)
    timezone.now = lambda: real() - offset


def presets() -> tuple[str, ...]:
    """The range presets the pages offer (dashboard.stats.PRESETS when it exists)."""
    try:
        from dashboard.stats import PRESETS
    except ImportError:
        return FALLBACK_PRESETS
    return tuple(PRESETS)


def viewer_client(organization):
    """A test client logged in (a real session row) as a viewer of the organization."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from organizations.models import Membership, Role

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USER, defaults={"email": "bench@example.com"})
    Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": Role.VIEWER})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def targets(organization, *, extra_paths: list[str], only: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(page, range label, path) for every page, app and preset (those whose name starts with one of `only`)."""
    from django.db.models import Count
    from django.urls import NoReverseMatch, reverse

    from telemetry.models import Event

    def url(name: str, **kwargs) -> str | None:
        try:
            return reverse(name, kwargs=kwargs)
        except NoReverseMatch:
            print(f"  (no URL named {name} yet: skipped)")
            return None

    def wanted(page: str) -> bool:
        return not only or any(page.startswith(prefix) for prefix in only)

    found = []
    ranges = presets()
    org_page = url("dashboard:org_overview", org_id=organization.public_id)
    if org_page:
        found += [("org_overview", preset, f"{org_page}?range={preset}") for preset in ranges]
    for app in organization.apps.order_by("pk"):
        kwargs = {"org_id": organization.public_id, "app_id": app.public_id}
        page = url("dashboard:app_overview", **kwargs)
        if page:
            found += [(f"app_overview {app.name}", preset, f"{page}?range={preset}") for preset in ranges]
        events = url("dashboard:app_events", **kwargs) if wanted(f"app_events {app.name}") else None
        if events:
            found.append((f"app_events {app.name}", "latest", events))
            found.append((f"app_events {app.name}", "type=error", f"{events}?type=error"))
            latest = Event.objects.filter(app=app).order_by("-timestamp").values_list("user_id", "session_id").first()
            if latest:
                found.append((f"app_events {app.name}", "one user", f"{events}?user={latest[0]}"))
                found.append((f"app_events {app.name}", "one session", f"{events}?session={latest[1]}"))
            # The user with the fewest events: the filter must find a handful among millions.
            quiet = (
                Event.objects.filter(app=app).values("user_id").annotate(n=Count("pk")).order_by("n", "user_id")
                .values_list("user_id", flat=True).first()
            )
            if quiet:
                found.append((f"app_events {app.name}", "quiet user", f"{events}?user={quiet}"))
        properties = url("dashboard:properties", **kwargs) if wanted(f"properties {app.name}") else None
        if properties:
            # The key list per preset; a number key with its series and split; the same filtered.
            found += [(f"properties {app.name}", preset, f"{properties}?range={preset}") for preset in ranges]
            number = f"{properties}?range=90d&type=command_execution&key=duration_ms&split=command"
            found.append((f"properties {app.name}", "90d split", number))
            found.append((f"properties {app.name}", "90d os", f"{number}&os=linux"))
        event_id = None
        if wanted(f"event_detail {app.name}"):
            event_id = Event.objects.filter(app=app).order_by("-timestamp").values_list("event_id", flat=True).first()
        if event_id:
            detail = url("dashboard:event_detail", event_id=event_id, **kwargs)
            if detail:
                found.append((f"event_detail {app.name}", "-", detail))
    found += [(path, "-", path) for path in extra_paths]
    return [target for target in found if wanted(target[0])]


def late_event_storer(organization, *, days_ago: int = 3):
    """A function that stores one event dated `days_ago` UTC days back into the
    organization's first app, through the ingest path (telemetry.ingest), as a
    client sending events it kept while offline would."""
    import random
    from datetime import timedelta

    from django.utils import timezone

    from sdk_events import make_event
    from telemetry.ingest import store_batch, validate_events

    app = organization.apps.order_by("pk").first()
    rng = random.Random(7)

    def store() -> None:
        now = timezone.now()
        event = make_event(rng, now=now - timedelta(days=days_ago))
        batch = validate_events([event], now=now)
        assert not batch.errors, batch.errors
        store_batch(app.pk, batch.rows, received_at=now)

    return store


def time_page(client, path: str, *, repeat: int, warmup: int, cold_cache: bool = False, before=None) -> dict:
    from django.core.cache import cache
    from django.db import connection

    queries: list[tuple[float, str]] = []

    def count(execute, sql, params, many, context):
        # Django's request_started signal empties connection.queries, so count here.
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append((time.perf_counter() - started, sql))

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        first = client.get(path)
        cold = time.perf_counter() - started
    first_queries = len(queries)
    for _ in range(warmup):
        client.get(path)
    timings, statuses = [], set()
    for _ in range(repeat):
        if cold_cache:
            cache.clear()  # as after any change of the closed days: nothing cached to use
        if before is not None:
            before()
        queries.clear()
        with connection.execute_wrapper(count):  # the statements of the last request are reported
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
        statuses.add(response.status_code)
    timings.sort()
    return {
        "status": sorted(statuses | {first.status_code}),
        "first_ms": cold * 1000,
        "first_queries": first_queries,
        "p50_ms": percentile(timings, 0.5) * 1000,
        "p95_ms": percentile(timings, 0.95) * 1000,
        "max_ms": timings[-1] * 1000,
        "mean_ms": statistics.mean(timings) * 1000,
        "queries": len(queries),
        "sql_ms": sum(seconds for seconds, _ in queries) * 1000,
        "slowest_queries": [(seconds * 1000, sql) for seconds, sql in sorted(queries, reverse=True)[:3]],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--org-id", help="organization public id (default: the 'Clacks demo' organization)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page (default 20)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--path", action="append", default=[], help="another path to time (e.g. a stats API URL)")
    parser.add_argument("--slow-queries", action="store_true", help="print the 3 slowest SQL statements of pages over the target")
    parser.add_argument("--cold-cache", action="store_true", help="empty Django's cache before each timed request")
    parser.add_argument("--hours-back", type=float, default=0, metavar="H", help="time the pages as if it were H hours ago")
    parser.add_argument(
        "--late-events", action="store_true", help="store one event dated 3 days back (in the first app) before each timed request"
    )
    parser.add_argument("--only", action="append", default=[], metavar="PAGE", help="time only pages whose name starts so (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    setup_django()
    turn_clock_back(args.hours_back)
    import logging

    from organizations.models import Organization
    from telemetry.models import Event

    logging.disable(logging.WARNING)  # slow-query warnings would interleave with the table
    organization = (
        Organization.objects.filter(public_id=args.org_id).first()
        if args.org_id
        else Organization.objects.filter(name="Clacks demo").first()
    )
    if organization is None:
        raise SystemExit("no such organization: seed one with bench/seed_events.py or pass --org-id")
    events = Event.objects.filter(app__organization=organization).count()
    client = viewer_client(organization)
    before = late_event_storer(organization) if args.late_events else None
    rows = []
    print(
        f"analytics pages: {organization.public_id}, {events:,} events, {args.repeat} timed requests each"
        + (", Django's cache emptied before each" if args.cold_cache else "")
        + (", each after a late event three days back" if args.late_events else "")
    )
    print(
        f"  {'page':<28} {'range':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'first':>8} {'SQL':>4} {'SQL ms':>7}"
        "  status   (SQL: statements of a timed request and their time, not counting fetching rows)"
    )
    for page, label, path in targets(organization, extra_paths=args.path, only=args.only):
        result = time_page(client, path, repeat=args.repeat, warmup=args.warmup, cold_cache=args.cold_cache, before=before)
        rows.append({"page": page, "range": label, "path": path, **result})
        flag = "" if result["p95_ms"] <= TARGET_P95_MS else f"  over {TARGET_P95_MS:.0f} ms"
        print(
            f"  {page:<28} {label:<10} {result['p50_ms']:8.1f} {result['p95_ms']:8.1f} {result['max_ms']:8.1f}"
            f" {result['first_ms']:8.1f} {result['queries']:>4} {result['sql_ms']:7.1f}  {','.join(map(str, result['status']))}{flag}",
            flush=True,
        )
        if args.slow_queries and flag:
            for ms, sql in result["slowest_queries"]:
                print(f"      {ms:8.1f} ms  {' '.join(sql.split())[:300]}")
    if args.json:
        print(json.dumps({"organization": organization.public_id, "events": events, "pages": rows}, indent=2))
    worst = max(rows, key=lambda row: row["p95_ms"]) if rows else None
    if worst:
        print(f"  slowest p95: {worst['page']} {worst['range']} {worst['p95_ms']:.1f} ms (target {TARGET_P95_MS:.0f} ms)")


if __name__ == "__main__":
    main()
