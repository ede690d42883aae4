#!/usr/bin/env python3
"""Where an analytics page's time goes: its SQL statements one by one, and its phases in Python.

Requests one page (by default the demo organization's overview over one
range preset) through Django's full stack with the test client, logged in as
a viewer, as bench/pages.py does, and prints per request: wall time, this
process's CPU time and the time spent waiting on SQL; each SQL statement
with its median time (in the order the page runs them); the main phases
(dashboard.stats functions, rendering) timed without a profiler; and with
--cprofile N the functions with most own time under cProfile.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench DEBUG=False SECRET_KEY=x \\
        .venv/bin/python bench/profile_page.py --range 90d --repeat 20
    .venv/bin/python bench/profile_page.py --app forge --range 30d --cprofile 30
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from pages import setup_django, turn_clock_back, viewer_client  # noqa: E402
from profile_ingest import Timer  # noqa: E402

# (module, attribute, label); indented labels run inside the one above. Missing
# names are skipped, so the list can name functions a later change adds.
PHASES = (
    ("dashboard.views", "_analytics", "the analytics section (dashboard.views._analytics)"),
    ("dashboard.stats", "with_daily_rollups", "  with_daily_rollups (freshness of closed days)"),
    ("dashboard.stats", "closed_figures", "  closed_figures (closed days, cached)"),
    ("dashboard.stats", "events_over_time", "  events_over_time"),
    ("dashboard.stats", "summary", "  summary"),
    ("telemetry.sketches", "count_distinct", "    count_distinct (users, sessions)"),
    ("dashboard.stats", "breakdowns", "  breakdowns"),
    ("dashboard.stats", "command_stats", "  command_stats"),
    ("dashboard.stats", "top_commands", "  top_commands"),
    ("dashboard.views", "bar_chart", "  bar_chart"),
    ("dashboard.stats", "app_activity", "app_activity"),
    ("telemetry.limits", "monthly_usage", "monthly_usage"),
    ("dashboard.views", "render", "render (templates)"),
)


def page_path(organization, *, app_name: str | None, preset: str) -> str:
    from django.urls import reverse

    if app_name is None:
        return reverse("dashboard:org_overview", kwargs={"org_id": organization.public_id}) + f"?range={preset}"
    app = organization.apps.get(name=app_name)
    kwargs = {"org_id": organization.public_id, "app_id": app.public_id}
    return reverse("dashboard:app_overview", kwargs=kwargs) + f"?range={preset}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--org-id", help="organization public id (default: the 'Clacks demo' organization)")
    parser.add_argument("--app", help="an app's name: profile its overview instead of the organization's")
    parser.add_argument("--range", default="90d", help="range preset (default 90d)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests (default 20)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cprofile", type=int, metavar="N", default=0, help="also list the N functions with most own time")
    parser.add_argument("--hours-back", type=float, default=0, metavar="H", help="as if it were H hours ago (bench/pages.py)")
    parser.add_argument("--path", help="profile this path instead (an insight page, e.g. as bench/pages.py prints it)")
    args = parser.parse_args(argv)
    setup_django()
    turn_clock_back(args.hours_back)
    import logging

    from django.db import connection

    from organizations.models import Organization

    logging.disable(logging.WARNING)
    organization = (
        Organization.objects.filter(public_id=args.org_id).first()
        if args.org_id
        else Organization.objects.filter(name="Clacks demo").first()
    )
    if organization is None:
        raise SystemExit("no such organization: seed one with bench/seed_events.py or pass --org-id")
    client = viewer_client(organization)
    path = args.path or page_path(organization, app_name=args.app, preset=args.range)
    timers = [timer for timer in (Timer(*phase) for phase in PHASES) if timer.active]

    runs: list[list[tuple[float, str]]] = []

    def record(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            runs[-1].append((time.perf_counter() - started, sql))

    def request() -> float:
        runs.append([])
        started = time.perf_counter()
        with connection.execute_wrapper(record):
            response = client.get(path)
        assert response.status_code == 200, response.status_code
        return time.perf_counter() - started

    for _ in range(args.warmup):
        request()
    runs.clear()
    for timer in timers:
        timer.reset()
    walls, cpu = [], time.process_time()
    for _ in range(args.repeat):
        walls.append(request())
    cpu = time.process_time() - cpu
    n = args.repeat
    sql_per_request = [sum(seconds for seconds, _ in run) for run in runs]
    counts = {len(run) for run in runs}

    print(f"page profile: {path}, {n} requests, database {connection.vendor}")
    print(
        f"  per request: {statistics.median(walls) * 1000:.1f} ms wall (median), {sum(walls) / n * 1000:.1f} ms mean,"
        f" {cpu / n * 1000:.1f} ms CPU in this process, SQL {statistics.median(sql_per_request) * 1000:.1f} ms"
        f" in {'/'.join(map(str, sorted(counts)))} statements"
    )
    print(f"  {'phase':<56} {'wall ms':>8} {'CPU ms':>8}  (mean per request)")
    for timer in timers:
        print(f"  {timer.label:<56} {timer.wall / n * 1000:8.2f} {timer.cpu / n * 1000:8.2f}")
    if len(counts) == 1:
        print("  SQL statements in order, median ms:")
        for i, (_, sql) in enumerate(runs[0]):
            ms = statistics.median(run[i][0] for run in runs) * 1000
            print(f"    {i + 1:>3} {ms:7.2f}  {' '.join(sql.split())[:220]}")
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            request()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(args.cprofile)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
        print(f"  under cProfile ({n} requests), functions by own time:")
        for line in lines[start : start + args.cprofile + 1]:
            print("    " + line)


if __name__ == "__main__":
    main()
