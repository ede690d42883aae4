#!/usr/bin/env python3
"""Time every analytics page at whatever size is seeded: p50/p95 over repeated requests.

Pages are found by URL name (dashboard:org_overview, dashboard:app_overview,
dashboard:app_events, dashboard:event_detail) and requested through Django's
full stack (middleware, session, templates) with the test client, logged in
as a viewer of the organization, once per range preset for the pages that
take one. Timing is in-process by default: no socket, no gunicorn.

The insight pages (INSIGHT_PAGES: releases, release health, a command's page
for build and deploy, retention, platforms, properties of the seeded custom
event split by a string key, and a funnel init -> build -> deploy, saved on the
app through dashboard.models.Funnel when that model exists) are timed for the
largest app (--insight-app to choose others) at 7, 30 and 90 days and at 90
days filtered to Linux x86_64. A page that answers 404 is reported as
"missing" and not timed.

--serve PORT starts gunicorn on this checkout (WEB_CONCURRENCY --workers) and
times the pages over HTTP, one keep-alive connection; --url times a server
already running on the same DATABASE_URL and SECRET_KEY (the viewer's session
is written here and read there). Either way the resident memory (RSS, from
/proc) of the server's worker processes is printed before and after the run,
with each worker's peak; in-process, that of this process, which served the
requests. Over HTTP the SQL columns stay empty: the statements run in the
workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench .venv/bin/python bench/pages.py
    .venv/bin/python bench/pages.py --org-id org_acme --repeat 50 --path /api/stats/...
    .venv/bin/python bench/pages.py --serve 8504 --workers 2 --only releases --only health

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
# Issue 11: the insight pages under 150 ms p95 too, cohort tables and funnels under 300 ms.
SLOWER_TARGETS_MS = {"retention": 300.0, "funnel": 300.0}
FALLBACK_PRESETS = ("24h", "7d", "30d", "90d")
BENCH_USER = "bench-viewer"
INSIGHT_RANGES = ("7d", "30d", "90d")
INSIGHT_FILTER = ("90d", "os=linux&arch=x86_64")  # the filtered variant: range and filter bar fields
# (page, path under the app's URL, query besides the range); seed_events.py makes the data they show.
INSIGHT_PAGES = (
    ("releases", "releases/", ""),
    ("health", "health/", ""),
    ("command build", "commands/build/", ""),
    ("command deploy", "commands/deploy/", ""),
    ("retention", "retention/", ""),
    ("platforms", "platforms/", ""),
    ("properties", "properties/", "type=download_finished&key=bytes&split=registry"),
)
BENCH_FUNNEL = (
    "init → build → deploy",
    [{"type": "command_execution", "name": name} for name in ("init", "build", "deploy")],
    24 * 3600,  # conversion window, seconds
)


def setup_django() -> None:
    os.environ.setdefault("DEBUG", "False")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ.setdefault("CLACKS_MANIFEST_STATIC", "False")  # no collectstatic needed to render pages
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.apps import apps

    # Once per process: a second django.setup() would configure logging again and
    # attach the django.request filters twice (tests call these mains in-process).
    if not apps.ready:
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


def target_ms(page: str) -> float:
    return SLOWER_TARGETS_MS.get(page.split()[0], TARGET_P95_MS)


def largest_app(organization):
    """The organization's app with the most events (counted from the hourly rollups: no scan of events)."""
    from django.db.models import Sum

    from telemetry.models import HourlyRollup

    totals = (
        HourlyRollup.objects.filter(app__organization=organization, dimension="total")
        .values("app").annotate(n=Sum("events")).order_by("-n").values_list("app", flat=True)
    )  # fmt: skip
    first = totals.first()
    return organization.apps.filter(pk=first).first() if first else organization.apps.order_by("pk").first()


def bench_funnel(app, *, report=print):
    """The id of the app's funnel BENCH_FUNNEL, saved through dashboard.models.Funnel
    if needed; None (said through `report`) when there is no such model."""
    try:
        from dashboard.models import Funnel
    except ImportError:
        report("  funnels: skipped (no dashboard.models.Funnel model)")
        return None
    name, steps, window = BENCH_FUNNEL
    funnel, _ = Funnel.objects.get_or_create(app=app, name=name, defaults={"steps": steps, "window_seconds": window})
    return funnel.pk


def insight_targets(organization, apps, *, only: list[str] | None = None, report=print) -> list[tuple[str, str, str]]:
    """(page, range label, path) of every insight page of `apps` at INSIGHT_RANGES and
    INSIGHT_FILTER (those whose name starts with one of `only`). Paths are built
    from the app's overview URL, so that a page not written yet answers 404."""
    from django.urls import reverse

    found = []
    for app in apps:
        base = reverse("dashboard:app_overview", kwargs={"org_id": organization.public_id, "app_id": app.public_id})
        pages = list(INSIGHT_PAGES)
        if not only or any(f"funnel {app.name}".startswith(prefix) for prefix in only):
            funnel = bench_funnel(app, report=report)
            if funnel is not None:
                pages.append(("funnel", f"funnels/{funnel}/", ""))
        for page, path, query in pages:
            name = f"{page} {app.name}"
            if only and not any(name.startswith(prefix) for prefix in only):
                continue
            extra = f"&{query}" if query else ""
            found += [(name, preset, f"{base}{path}?range={preset}{extra}") for preset in INSIGHT_RANGES]
            preset, filters = INSIGHT_FILTER
            found.append((name, f"{preset} {filters.replace('os=', '').replace('&arch=', '/')}",
                          f"{base}{path}?range={preset}{extra}&{filters}"))  # fmt: skip
    return found


# --- Over HTTP, and the server's memory ------------------------------------------------------


class HttpResponse:
    def __init__(self, status: int):
        self.status_code = status


class HttpClient:
    """GETs to a running server over one keep-alive connection, with a session cookie."""

    def __init__(self, url: str, *, cookie: str):
        from urllib.parse import urlsplit

        target = urlsplit(url)
        self.host, self.port = target.hostname, target.port or 80
        self.headers = {"Cookie": cookie, "Host": f"{self.host}:{self.port}"}
        self.connection = None

    def get(self, path: str) -> HttpResponse:
        import http.client

        for attempt in (1, 2):  # the server may close an idle keep-alive connection
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                response.read()
                return HttpResponse(response.status)
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def http_client(organization, url: str) -> HttpClient:
    """A client of the server at `url` signed in as the viewer (the session row is
    written here: the server must share DATABASE_URL and SECRET_KEY)."""
    from django.conf import settings

    session = viewer_client(organization).cookies[settings.SESSION_COOKIE_NAME].value
    return HttpClient(url, cookie=f"{settings.SESSION_COOKIE_NAME}={session}")


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (/proc/net/tcp and tcp6; state 0A is LISTEN)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def server_processes(port: int) -> tuple[int | None, list[int]]:
    """(master pid, worker pids) of the gunicorn serving `port`: the processes
    holding its listening socket, the master being the one whose parent does not."""
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    holders = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in sockets for fd in (entry / "fd").iterdir()):
                holders.add(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    parents = {pid: _status(pid).get("PPid") for pid in holders}
    masters = [pid for pid, parent in parents.items() if parent not in holders]
    master = masters[0] if len(masters) == 1 else None
    return master, sorted(pid for pid in holders if pid != master)


def _status(pid: int) -> dict[str, int]:
    """The numeric fields of /proc/PID/status we read (VmRSS and VmHWM in kB, PPid)."""
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "PPid"):
                fields[name] = int(value.split()[0])
    except OSError:
        pass
    return fields


def memory(pids: list[int]) -> dict[int, tuple[float, float]]:
    """{pid: (resident MiB, peak resident MiB)} of the processes still alive."""
    found = {}
    for pid in pids:
        fields = _status(pid)
        if "VmRSS" in fields:
            found[pid] = (fields["VmRSS"] / 1024, fields.get("VmHWM", 0) / 1024)
    return found


def describe_memory(label: str, sizes: dict[int, tuple[float, float]]) -> str:
    if not sizes:
        return f"  memory {label}: no process found"
    rss = [size for size, _ in sizes.values()]
    each = ", ".join(f"{pid} {size:.0f} (peak {peak:.0f})" for pid, (size, peak) in sorted(sizes.items()))
    return f"  memory {label}: RSS total {sum(rss):.0f} MiB, largest {max(rss):.0f} MiB; per process MiB: {each}"


def late_event_storer(organization, *, days_ago: int = 3):
    """A function that stores one event dated `days_ago` UTC days back into the
    organization's first app, through the ingest path (telemetry.ingest), as a
    client sending events it kept while offline would."""
    import random
    from datetime import timedelta

    from django.utils import timezone

    from sdk_events import make_event
    from telemetry.ingest import validate_events
    from telemetry.storage import store_batch

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
    """Figures of `repeat` timed GETs of `path` after one first and `warmup` untimed
    ones; {"status": [404], "missing": True} alone when the first answers 404."""
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
    if first.status_code == 404:
        return {"status": [404], "missing": True, "first_ms": cold * 1000}
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
    parser.add_argument(
        "--insight-app", action="append", default=[], metavar="NAME", help="app whose insight pages to time (repeatable; default the largest)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--serve", type=int, metavar="PORT", help="start gunicorn on 127.0.0.1:PORT and time over HTTP")
    where.add_argument("--url", help="time a running server over HTTP (same DATABASE_URL and SECRET_KEY)")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY with --serve (default 2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if (args.hours_back or args.cold_cache or args.late_events) and (args.serve or args.url):
        parser.error("--hours-back, --cold-cache and --late-events act in this process: time in-process to use them")
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
    before = late_event_storer(organization) if args.late_events else None
    server = None
    if args.serve:
        from django.db import connections

        from compare import start_server

        connections.close_all()
        log = Path(f"/tmp/clacks_bench_pages_gunicorn_{args.serve}.log")
        server = start_server(port=args.serve, workers=args.workers, log=log)
        url = f"http://127.0.0.1:{args.serve}"
    else:
        url = args.url
    try:
        rows, memory_figures = run(organization, events, args, url=url, before=before)
    finally:
        if server is not None:
            from compare import stop_server

            stop_server(server)
    if args.json:
        print(json.dumps({"organization": organization.public_id, "events": events, "pages": rows, "memory": memory_figures}, indent=2))


def run(organization, events: int, args, *, url: str | None, before) -> tuple[list[dict], dict]:
    """Time every page, print the table and the memory before and after; the rows and memory figures."""
    from urllib.parse import urlsplit

    apps = (
        list(organization.apps.filter(name__in=args.insight_app)) if args.insight_app else [largest_app(organization)]
    )
    if url:
        client = http_client(organization, url)
        master, workers = server_processes(urlsplit(url).port or 80)
        if not workers:
            print(f"  (no worker processes found listening on {url}: memory not reported)")
        where = f"over HTTP at {url}, gunicorn master {master}, workers {', '.join(map(str, workers)) or '?'}"
    else:
        client, workers = viewer_client(organization), [os.getpid()]
        where = "in-process (no gunicorn: the memory is this process's)"
    start_memory = memory(workers)  # before any page was asked for
    overview = targets(organization, extra_paths=[], only=["app_overview"])
    if url and overview:
        answer = client.get(overview[0][2]).status_code
        if answer != 200:
            raise SystemExit(f"{url} answered {answer} to the viewer: does it use this DATABASE_URL and SECRET_KEY?")
    pages = targets(organization, extra_paths=args.path, only=args.only)
    pages += insight_targets(organization, [app for app in apps if app], only=args.only)
    rows = []
    print(
        f"analytics pages: {organization.public_id}, {events:,} events, {args.repeat} timed requests each, {where}"
        + (", Django's cache emptied before each" if args.cold_cache else "")
        + (", each after a late event three days back" if args.late_events else "")
    )
    print(describe_memory("before", start_memory))
    print(
        f"  {'page':<28} {'range':<18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'first':>8} {'SQL':>4} {'SQL ms':>7}"
        "  status   (SQL: statements of a timed request and their time, not counting fetching rows)"
    )
    for page, label, path in pages:
        result = time_page(client, path, repeat=args.repeat, warmup=args.warmup, cold_cache=args.cold_cache, before=before)
        rows.append({"page": page, "range": label, "path": path, **result})
        if result.get("missing"):
            print(f"  {page:<28} {label:<18} {'missing (404: no such page yet)':>44}", flush=True)
            continue
        target = target_ms(page)
        flag = "" if result["p95_ms"] <= target else f"  over {target:.0f} ms"
        sql = f"{result['queries']:>4} {result['sql_ms']:7.1f}" if not url else f"{'-':>4} {'-':>7}"
        print(
            f"  {page:<28} {label:<18} {result['p50_ms']:8.1f} {result['p95_ms']:8.1f} {result['max_ms']:8.1f}"
            f" {result['first_ms']:8.1f} {sql}  {','.join(map(str, result['status']))}{flag}",
            flush=True,
        )
        if args.slow_queries and flag and not url:
            for ms, sql_text in result["slowest_queries"]:
                print(f"      {ms:8.1f} ms  {' '.join(sql_text.split())[:300]}")
    end_memory = memory(workers)
    print(describe_memory("before", start_memory))
    print(describe_memory("after ", end_memory))
    if url and set(end_memory) != set(start_memory):
        print("  (workers changed during the run: one was restarted, see the server's log)")
    timed = [row for row in rows if not row.get("missing")]
    missing = sorted({row["page"] for row in rows if row.get("missing")})
    if missing:
        print(f"  missing pages (404): {', '.join(missing)}")
    worst = max(timed, key=lambda row: row["p95_ms"] / target_ms(row["page"])) if timed else None
    if worst:
        print(
            f"  slowest p95 against its target: {worst['page']} {worst['range']} {worst['p95_ms']:.1f} ms"
            f" (target {target_ms(worst['page']):.0f} ms)"
        )
    figures = {
        "where": where,
        "before_mib": {str(pid): size for pid, size in start_memory.items()},
        "after_mib": {str(pid): size for pid, size in end_memory.items()},
    }
    return rows, figures


if __name__ == "__main__":
    main()
