#!/usr/bin/env python3
"""Time funnel pages at whatever size is seeded: p50/p95 of each funnel's page per range.

Uses the largest app of the organization made by seed_events.py ("Clacks
demo") unless --app is given, saves the funnels below on it if missing, and
requests each funnel's page through Django's full stack as a viewer
(bench/pages.py's client and timing), for each range and filter. A range
that ends today is never served from the cache (docs/insights.md, Funnels),
so every timed request computes the funnel; --explain prints the plan of the
funnel statement (EXPLAIN ANALYZE, PostgreSQL) once per funnel and range.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench .venv/bin/python bench/funnels.py
    .venv/bin/python bench/funnels.py --range 90d --repeat 30 --only "init → build → deploy"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from pages import setup_django, time_page, turn_clock_back, viewer_client  # noqa: E402

TARGET_P95_MS = 300.0  # issue 11: funnels under 300 ms p95 at 10 M events
DAY = 86400
# (name, steps as (type, name), window in seconds)
FUNNELS = (
    ("init → build → deploy", (("command_execution", "init"), ("command_execution", "build"), ("command_execution", "deploy")), DAY),
    ("init → build → deploy, 7 days", (("command_execution", "init"), ("command_execution", "build"), ("command_execution", "deploy")), 7 * DAY),
    ("cache → publish", (("feature_used", "cache"), ("command_execution", "publish")), DAY),
    ("build → deploy", (("command_execution", "build"), ("command_execution", "deploy")), DAY),
    ("error → any command", (("error", ""), ("command_execution", "")), 3600),
)
FILTERS = ("", "os=windows")


def bench_app(org, name: str | None):
    from django.db.models import Count

    apps = org.apps.all()
    if name:
        return apps.get(name=name)
    return apps.annotate(n=Count("events")).order_by("-n").first()


def ensure_funnels(app) -> list:
    from dashboard.models import Funnel

    funnels = []
    for name, steps, window in FUNNELS:
        funnel, _ = Funnel.objects.get_or_create(
            app=app, name=name,
            defaults={"steps": [{"type": t, "name": n} for t, n in steps], "window_seconds": window},
        )  # fmt: skip
        funnels.append(funnel)
    return funnels


def explain(app, funnel, preset: str) -> str:
    from django.db import connection
    from django.utils import timezone

    from dashboard import funnels, stats

    period = stats.preset_range(preset, now=timezone.now())
    plans = []

    def capture(execute, sql, params, many, context):
        if sql.startswith("WITH s1"):
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        funnels.compute(app.pk, funnels.steps_of(funnel.steps), window=funnel.window, start=period.start, end=period.end)
    return plans[0] if plans else "(no statement: SQLite, or served from the cache)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--org-id")
    parser.add_argument("--app", help="app name (default: the organization's app with most events)")
    parser.add_argument("--range", action="append", default=[], help="preset (repeatable; default 30d and 90d)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", action="append", default=[], help="funnel names to time (repeatable)")
    parser.add_argument("--hours-back", type=float, default=0)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    setup_django()
    turn_clock_back(args.hours_back)
    from django.urls import reverse

    from organizations.models import Organization

    org = Organization.objects.get(public_id=args.org_id) if args.org_id else Organization.objects.get(name="Clacks demo")
    app = bench_app(org, args.app)
    client = viewer_client(org)
    print(f"app {app.name} ({app.public_id}); target p95 < {TARGET_P95_MS:.0f} ms")
    print(f"{'funnel':<34} {'range':<6} {'filter':<11} {'status':<6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'sql ms':>8} {'queries':>7}")
    for funnel in ensure_funnels(app):
        if args.only and funnel.name not in args.only:
            continue
        path = reverse(
            "dashboard:funnel_detail", kwargs={"org_id": org.public_id, "app_id": app.public_id, "funnel_id": funnel.pk}
        )
        for preset in args.range or ["30d", "90d"]:
            if args.explain:
                print(explain(app, funnel, preset))
            for extra in FILTERS:
                query = f"range={preset}" + (f"&{extra}" if extra else "")
                figures = time_page(client, f"{path}?{query}", repeat=args.repeat, warmup=args.warmup)
                flag = "" if figures["p95_ms"] < TARGET_P95_MS else "  over"
                print(
                    f"{funnel.name:<34} {preset:<6} {extra or '-':<11} {','.join(map(str, figures['status'])):<6}"
                    f" {figures['p50_ms']:>8.1f} {figures['p95_ms']:>8.1f}"
                    f" {figures['max_ms']:>8.1f} {figures['sql_ms']:>8.1f} {figures['queries']:>7}{flag}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
