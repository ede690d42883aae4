#!/usr/bin/env python3
"""Seed realistic events for the analytics benchmarks: N events over D days across a few apps.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench .venv/bin/python bench/seed_events.py
    .venv/bin/python bench/seed_events.py --events 200000 --days 30      # SQLite, small

PostgreSQL gets COPY (rows are generated in worker processes while the
database writes); SQLite gets executemany in large transactions. The apps
live in the organization "Clacks demo" (created if needed); running it again
adds more events, --replace deletes the demo apps' events first.

What the data looks like, per app: a heavy-tailed user base (a few users send
most events), each user with a fixed platform (OS/arch/shell) and a CI share;
sessions per user and day; traffic growing over the window with weekly and
daily cycles; service versions released over time and adopted with a lag;
event types and commands with their own success rates and durations.

After the raw events, `seed_events()` calls `after_seed()`, which rebuilds
the aggregates through `manage.py rebuild_rollups` when that command exists.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import math
import multiprocessing
import os
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

DEMO_ORG = "Clacks demo"
# (app name, share of all events, users per million events)
DEMO_APPS = (("forge", 0.55, 4000), ("tidy", 0.25, 6000), ("shipit", 0.15, 3000), ("probe", 0.05, 9000))
CHUNK = 20_000  # rows generated per work unit

# The columns written, in order; each is a field of telemetry.models.Event.
COLUMNS = (
    "app_id", "event_id", "timestamp", "received_at", "schema_version", "event_type", "category", "user_id",
    "session_id", "service_name", "service_version", "service_language", "service_language_version", "os",
    "os_version", "arch", "ci", "shell", "sdk_version", "data",
)  # fmt: skip

# --- Distributions ----------------------------------------------------------------------
# Weights, not probabilities. Commands: (name, weight, success rate, median duration ms).
COMMANDS = (
    ("build", 30, 0.93, 4200), ("test", 22, 0.88, 9500), ("run", 18, 0.96, 1500), ("fmt", 8, 0.995, 300),
    ("lint", 7, 0.9, 2100), ("deploy", 5, 0.85, 24000), ("init", 3, 0.98, 800), ("publish", 2, 0.9, 12000),
    ("help", 5, 1.0, 40),
)  # fmt: skip
FEATURES = (("cache", 40), ("remote", 20), ("watch", 15), ("plugins", 15), ("completion", 10))
ERRORS = (("network", 45), ("config", 30), ("panic", 10), ("io", 15))
# (event type, category, weight)
EVENT_TYPES = (
    ("command_execution", "usage", 78), ("feature_used", "library", 15), ("error", "error", 4),
    ("performance", "performance", 3),
)  # fmt: skip
# (os, arch, shell choices, weight, share of these users that are CI machines)
PLATFORMS = (
    ("linux", "x86_64", ("bash", "zsh", "fish"), 45, 0.15), ("linux", "aarch64", ("bash",), 8, 0.3),
    ("macos", "aarch64", ("zsh", "bash", "fish"), 25, 0.02), ("macos", "x86_64", ("zsh", "bash"), 7, 0.03),
    ("windows", "x86_64", ("powershell", "cmd"), 14, 0.05), ("freebsd", "x86_64", ("sh",), 1, 0.0),
)  # fmt: skip
# (version, released this many days before the end of the window)
VERSIONS = (("1.0.0", 400), ("1.1.0", 75), ("1.2.0", 48), ("1.2.1", 33), ("1.3.0", 12), ("1.3.1", 3))
SDK_VERSIONS = (("telemetry-kit-rust/0.3.0", 85), ("telemetry-kit-rust/0.2.4", 15))
HOUR_WEIGHTS = tuple(0.35 + 0.65 * math.exp(-(((h - 15) / 4.5) ** 2)) for h in range(24))  # UTC, peak mid-afternoon


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


@dataclass
class AppPlan:
    pk: int
    name: str
    events: int
    users: int
    public_id: str = ""


@dataclass
class SeedPlan:
    apps: list[AppPlan]
    days: int
    end: datetime
    seed: int
    units: list[tuple[int, int, int]] = field(default_factory=list)  # (app index, rows, unit seed)

    def __post_init__(self):
        rng = random.Random(self.seed)
        for index, app in enumerate(self.apps):
            left = app.events
            while left > 0:
                rows = min(CHUNK, left)
                self.units.append((index, rows, rng.getrandbits(48)))
                left -= rows
        rng.shuffle(self.units)  # interleave apps, as live traffic does


class Generator:
    """Builds event rows for one app; deterministic for a given seed."""

    def __init__(self, plan: SeedPlan, app: AppPlan):
        self.plan, self.app = plan, app
        rng = random.Random(f"{plan.seed}:{app.name}")
        days = plan.days
        # Traffic grows over the window (x2.3 from first to last day); weekends are quieter.
        start_day = plan.end - timedelta(days=days)
        self.start = start_day.timestamp()
        day_weights = []
        for d in range(days):
            weekday = (start_day + timedelta(days=d)).weekday()
            day_weights.append((0.6 + 1.4 * d / max(1, days - 1)) * (0.55 if weekday >= 5 else 1.0))
        self.day_cum = _cumulative(day_weights)
        self.hour_cum = _cumulative(HOUR_WEIGHTS)
        # Users: Pareto-like activity, fixed platform, CI or not, and an upgrade lag.
        platform_cum = _cumulative(p[3] for p in PLATFORMS)
        self.users = []
        activity = []
        for u in range(app.users):
            os_name, arch, shells, _, ci_share = PLATFORMS[bisect.bisect(platform_cum, rng.random() * platform_cum[-1])]
            ci = rng.random() < ci_share
            self.users.append(
                (
                    "client_" + hashlib.sha256(f"{app.name}:{u}".encode()).hexdigest(),
                    f"{u:08x}",
                    os_name,
                    arch,
                    "t" if ci else "f",
                    rng.choice(shells),
                    rng.expovariate(1 / 9.0),  # days before this user upgrades
                    SDK_VERSIONS[0][0] if rng.random() < 0.85 else SDK_VERSIONS[1][0],
                )
            )
            activity.append(rng.paretovariate(1.3) * (1.5 if ci else 1.0))  # CI: ~15 % of events
        self.user_cum = _cumulative(activity)
        self.type_cum = _cumulative(t[2] for t in EVENT_TYPES)
        self.command_cum = _cumulative(c[1] for c in COMMANDS)
        self.feature_cum = _cumulative(f[1] for f in FEATURES)
        self.error_cum = _cumulative(e[1] for e in ERRORS)

    def version_at(self, day_before_end: float) -> str:
        chosen = VERSIONS[0][0]
        for version, released in VERSIONS:
            if released >= day_before_end:
                chosen = version
        return chosen

    def rows(self, count: int, seed: int):
        """`count` rows as tuples of COLUMNS, in PostgreSQL text form (ISO times, t/f, JSON text)."""
        rng = random.Random(seed)
        rand, choice = rng.random, bisect.bisect
        app_pk, days, end = self.app.pk, self.plan.days, self.plan.end.timestamp()
        day_cum, hour_cum, user_cum = self.day_cum, self.hour_cum, self.user_cum
        day_total, hour_total, user_total = day_cum[-1], hour_cum[-1], user_cum[-1]
        ids = os.urandom(16 * count).hex()
        service = self.app.name
        for i in range(count):
            day = choice(day_cum, rand() * day_total)
            hour = choice(hour_cum, rand() * hour_total)
            moment = self.start + day * 86400 + hour * 3600 + rand() * 3600
            if moment > end:
                moment = end - rand() * 3600
            user_id, user_hex, os_name, arch, ci, shell, lag, sdk = self.users[choice(user_cum, rand() * user_total)]
            # A few sessions per user and day.
            session = f"sess_{user_hex}{day:04x}{int(rand() * 3):04x}{'0' * 16}"
            version = self.version_at((end - moment) / 86400 + lag)
            kind, category, _ = EVENT_TYPES[choice(self.type_cum, rand() * self.type_cum[-1])]
            if kind == "command_execution":
                name, _, success_rate, median = COMMANDS[choice(self.command_cum, rand() * self.command_cum[-1])]
                success = rand() < (success_rate if ci == "f" else success_rate - 0.04)
                duration = int(median * math.exp(rng.gauss(0, 0.9)))
                if success:
                    data = f'{{"command":"{name}","duration_ms":{duration},"success":true}}'
                else:
                    data = f'{{"command":"{name}","duration_ms":{duration},"exit_code":{1 + int(rand() * 2)},"success":false}}'
            elif kind == "feature_used":
                name = FEATURES[choice(self.feature_cum, rand() * self.feature_cum[-1])][0]
                data = f'{{"feature":"{name}","method":"default","success":{"true" if rand() < 0.97 else "false"}}}'
            elif kind == "error":
                name = ERRORS[choice(self.error_cum, rand() * self.error_cum[-1])][0]
                data = f'{{"error_kind":"{name}","success":false}}'
            else:
                data = f'{{"duration_ms":{int(rng.lognormvariate(5, 1))},"metric":"startup"}}'
            h = ids[32 * i : 32 * i + 32]
            stamp = datetime.fromtimestamp(moment, timezone.utc)
            received = datetime.fromtimestamp(min(end, moment + rng.expovariate(1 / 90)), timezone.utc)
            yield (
                app_pk, f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}", stamp, received, "1.0.0", kind,
                category, user_id, session, service, version, "rust", "1.75.0", os_name, "", arch, ci, shell, sdk,
                data,
            )  # fmt: skip


# --- Writing ------------------------------------------------------------------------------

_GENERATORS: dict[int, Generator] = {}


def _copy_text(unit: tuple[int, int, int], plan: SeedPlan) -> tuple[int, bytes]:
    """One unit of rows in COPY text format (the values contain no tab, newline or backslash)."""
    index, count, seed = unit
    generator = _GENERATORS.get(index) or _GENERATORS.setdefault(index, Generator(plan, plan.apps[index]))
    lines = []
    for row in generator.rows(count, seed):
        values = list(row)
        values[2] = values[2].isoformat()
        values[3] = values[3].isoformat()
        lines.append("\t".join(map(str, values)))
    return count, ("\n".join(lines) + "\n").encode()


_PLAN: SeedPlan | None = None


def _init_worker(plan: SeedPlan) -> None:
    global _PLAN
    _PLAN = plan


def _copy_text_in_worker(unit):
    return _copy_text(unit, _PLAN)


def write_postgresql(plan: SeedPlan, *, jobs: int, progress) -> int:
    from django.db import connection

    from telemetry.models import Event

    sql = f"COPY {Event._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
    connection.ensure_connection()
    raw = connection.connection
    written = 0
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, initializer=_init_worker, initargs=(plan,)) as pool, raw.cursor() as cursor:
        # One transaction per 20 units (400,000 rows): a failure loses at most that much.
        units = iter(pool.imap(_copy_text_in_worker, plan.units, chunksize=1))
        done = False
        while not done:
            with raw.transaction(), cursor.copy(sql) as copy:
                for _ in range(20):
                    try:
                        count, text = next(units)
                    except StopIteration:
                        done = True
                        break
                    copy.write(text)
                    written += count
            progress(written)
    return written


def write_generic(plan: SeedPlan, *, progress) -> int:
    """SQLite (or any other backend): executemany, values adapted as Django stores them."""
    from django.db import connection, transaction

    from telemetry.models import Event

    ops = connection.ops
    sql = (
        f"INSERT INTO {Event._meta.db_table} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
    )
    generators: dict[int, Generator] = {}
    written = 0
    for index, count, seed in plan.units:
        generator = generators.get(index) or generators.setdefault(index, Generator(plan, plan.apps[index]))
        params = []
        for row in generator.rows(count, seed):
            values = list(row)
            values[1] = values[1].replace("-", "")  # Django keeps UUIDs as 32 hex digits here
            values[2] = ops.adapt_datetimefield_value(values[2])
            values[3] = ops.adapt_datetimefield_value(values[3])
            values[16] = values[16] == "t"
            params.append(values)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, params)
        written += count
        progress(written)
    return written


# --- Hooks ------------------------------------------------------------------------------------


def before_seed(*, start: datetime, end: datetime, progress=print) -> None:
    """Get storage ready for rows in [start, end]: on a time-partitioned events
    table, create the partitions of the whole window (and the usual ones ahead),
    so the rows do not all land in the DEFAULT partition."""
    try:
        from telemetry import partitions
    except ImportError:
        return
    if not partitions.is_partitioned():
        return
    intervals, day = 0, start.date()
    while day <= end.date():
        day = partitions.interval_bounds(day)[1]
        intervals += 1
    created = partitions.ensure_partitions(now=start, ahead=intervals + 3)
    if created:
        progress(f"created partitions {created[0]} to {created[-1]}")


def after_seed(*, apps: list, progress) -> None:
    """Rebuild whatever is derived from raw events, then refresh planner statistics."""
    from django.core.management import call_command, get_commands
    from django.db import connection

    if "rebuild_rollups" in get_commands():
        started = time.monotonic()
        call_command("rebuild_rollups", *(app.public_id for app in apps), stdout=open(os.devnull, "w"))
        progress(f"rebuild_rollups took {time.monotonic() - started:.0f} s")
    else:
        progress("no rebuild_rollups command: aggregates not rebuilt")
    if connection.vendor in ("postgresql", "sqlite"):
        with connection.cursor() as cursor:
            # Every table: the rollups and their caches were just written too.
            cursor.execute("ANALYZE")


# --- Entry points ------------------------------------------------------------------------------


def demo_apps(*, total: int, replace: bool) -> list[AppPlan]:
    """The demo organization's apps, created if needed, with their share of `total` events."""
    from django.db import connection

    from organizations.models import App, Organization
    from organizations.services import create_app, create_organization
    from telemetry.models import Event

    org = Organization.objects.filter(name=DEMO_ORG).first() or create_organization(name=DEMO_ORG)
    plans = []
    for name, share, users_per_million in DEMO_APPS:
        app = App.objects.filter(organization=org, name=name).first() or create_app(organization=org, name=name)[0]
        if replace:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE app_id = %s", [app.pk])
        events = round(total * share)
        users = max(50, round(users_per_million * max(events, 1) / 1e6 * 4 ** (1 - min(1.0, events / 1e6))))
        plans.append(AppPlan(pk=app.pk, name=name, events=events, users=users, public_id=app.public_id))
    return plans


def seed_events(
    *,
    events: int = 10_000_000,
    days: int = 90,
    seed: int = 1,
    replace: bool = False,
    jobs: int | None = None,
    end: datetime | None = None,
    progress=print,
) -> dict:
    """Write `events` demo events over the `days` before `end` (default now); returns figures."""
    from django.db import connection

    end = end or datetime.now(timezone.utc)
    plan = SeedPlan(apps=demo_apps(total=events, replace=replace), days=days, end=end, seed=seed)
    before_seed(start=end - timedelta(days=days), end=end, progress=progress)
    started = time.monotonic()
    last = [started]

    def report(written: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 5 or written == events:
            last[0] = now
            progress(f"  {written:,} / {events:,} events ({written / (now - started):,.0f}/s)")

    if connection.vendor == "postgresql":
        written = write_postgresql(plan, jobs=jobs or max(1, (os.cpu_count() or 2) - 1), progress=report)
    else:
        written = write_generic(plan, progress=report)
    seconds = time.monotonic() - started
    after_seed(apps=plan.apps, progress=progress)
    return {
        "events": written,
        "seconds": seconds,
        "events_per_s": written / seconds if seconds else 0.0,
        "apps": [(app.name, app.events, app.users) for app in plan.apps],
        "total_seconds": time.monotonic() - started,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replace", action="store_true", help="delete the demo apps' events first")
    parser.add_argument("--jobs", type=int, help="generator processes on PostgreSQL (default: cores - 1)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    print(f"seeding {args.events:,} events over {args.days} days into {connection.vendor} ({connection.settings_dict['NAME']})")
    result = seed_events(events=args.events, days=args.days, seed=args.seed, replace=args.replace, jobs=args.jobs)
    print(
        f"seeded {result['events']:,} events in {result['seconds']:.0f} s ({result['events_per_s']:,.0f} events/s);"
        f" {result['total_seconds']:.0f} s with aggregates and ANALYZE"
    )
    for name, count, users in result["apps"]:
        print(f"  {name:<8} {count:>11,} events  {users:>7,} users")


if __name__ == "__main__":
    main()
