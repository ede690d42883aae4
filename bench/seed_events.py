#!/usr/bin/env python3
"""Seed realistic events for the analytics benchmarks: N events over D days across a few apps.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench .venv/bin/python bench/seed_events.py
    .venv/bin/python bench/seed_events.py --events 200000 --days 30      # SQLite, small

PostgreSQL gets COPY (rows are generated in worker processes while the
database writes); SQLite gets executemany in large transactions. The apps
live in the organization "Clacks demo" (created if needed); running it again
adds more events, --replace deletes the demo apps' events first.

What the data looks like, per app (the constants below hold every figure).
The window is D UTC days, the last one the current day up to the end (now).

- Users. New users arrive every day, more each day (about 1 % a day), from
  HISTORY_DAYS before the window on; an app has about its DEMO_APPS number of
  users per million events seen in the window. Each has a fixed platform (OS,
  OS version, arch, shell) and SDK version, and is a person or a CI machine.
  A person is active on the day they arrive, then either never again (`one
  day`, 35 %), or on each later day with a chance that decays with age
  (`casual`: 10-45 % at first, falling with a time constant of 1 + Exp(10)
  days), or is a heavy user who stays (`core`, 10 %: 55-90 % of days, three
  times the events); people are less active on Saturdays and Sundays
  (WEEKEND) and mostly in the UTC afternoon. CI machines run nearly every day,
  at any hour, until they are retired after Exp(120) days, and send
  CI_EVENT_SHARE of the events. How many events a user sends on an active day
  is heavy-tailed (Pareto); a few sessions a user a day. Traffic grows over
  the window as users arrive; there are no fixed daily totals. At 90 days
  about 40 % of users are seen on one day only, and of a week's new users
  about 45 % come back the next week and 15-20 % six weeks later.
- Releases (RELEASES): a minor every three to five weeks with patches between.
  New users install the newest release; each user then upgrades to a release
  a lag after it comes out (log-normal, median 4 days), so a release reaches
  half of the active users in about a week; STALE_SHARE of people upgrade
  45-300 days late, so versions months old keep users; CI_PINNED_SHARE of CI
  machines never upgrade. A few people (RC_TESTER_SHARE, at least 3) run the
  pre-release PRE_RELEASE from its day until they move to its final release,
  and a handful (at least 2) run NIGHTLY, a build without a semantic
  version, throughout.
- Commands (COMMANDS): `command_execution` events carry `command`,
  `subcommand` (commands that have one), `flags` (a list of strings),
  `success`, `exit_code` (0 on success; 1, 2, 101 or 130 on failure) and
  `duration_ms` (log-normal around the command's median). Failure rates and
  durations depend on the command only, except for REGRESSION: `deploy` in
  1.3.0 fails three times as often (45 % of runs instead of 15 %, half of
  them with exit code 101) and runs 1.6 times slower, fixed in 1.3.1.
- `feature_used` events carry `feature`, `method`, `success` and one key of
  the feature's own (FEATURES). The custom type CUSTOM_EVENT
  (`download_finished`) carries floats `bytes`, `files` and `elapsed_ms`
  (elapsed time follows bytes over the registry's speed), `registry` (4
  values) and, on most events, `mirror` (a long tail of MIRRORS hosts).
  `error` and `performance` events complete the mix (EVENT_TYPES).

Everything but the event ids (random, so a second run adds events rather than
repeating ids) is a function of --seed, the sizes and the window's end.

After the raw events, `seed_events()` calls `after_seed()`, which rebuilds
the aggregates through `manage.py rebuild_rollups` when that command exists,
runs what the scheduler's hourly jobs would (daily rollups, property
summaries) and ends with ANALYZE of every table.
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
from array import array
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
# Weights, not probabilities.
# Commands: (name, weight, success rate, median duration ms, subcommands with
# weights, flags with the chance that a run passes each).
COMMANDS = (
    ("build", 30, 0.93, 4200, (),
     (("--release", 0.45), ("--features", 0.2), ("--locked", 0.15), ("--jobs", 0.12), ("--verbose", 0.08),
      ("--offline", 0.04))),
    ("test", 22, 0.88, 9500, (("unit", 60), ("integration", 30), ("e2e", 10)),
     (("--filter", 0.25), ("--no-fail-fast", 0.2), ("--release", 0.1), ("--jobs", 0.1), ("--verbose", 0.1))),
    ("run", 18, 0.96, 1500, (("dev", 70), ("script", 30)), (("--release", 0.2), ("--watch", 0.15), ("--env", 0.1))),
    ("fmt", 8, 0.995, 300, (), (("--check", 0.3),)),
    ("lint", 7, 0.9, 2100, (("check", 80), ("fix", 20)), (("--strict", 0.15), ("--quiet", 0.1))),
    ("deploy", 5, 0.85, 24000, (("staging", 55), ("production", 35), ("preview", 10)),
     (("--env", 0.6), ("--yes", 0.5), ("--dry-run", 0.15), ("--force", 0.05))),
    ("init", 3, 0.98, 800, (("app", 60), ("lib", 30), ("workspace", 10)), (("--git", 0.5), ("--template", 0.4))),
    ("publish", 2, 0.9, 12000, (("crate", 70), ("image", 30)), (("--dry-run", 0.3), ("--token", 0.2))),
    ("help", 5, 1.0, 40, (), ()),
)  # fmt: skip
FAILURE_EXIT_CODES = ((1, 62), (2, 18), (101, 8), (130, 12))  # 2: usage, 101: a Rust panic, 130: Ctrl-C
FLAG_SETS = 64  # distinct flag lists drawn per command and app (one draw per run picks one)


@dataclass(frozen=True)
class Regression:
    """A command that fails more often and runs slower in one release, fixed in the next."""

    command: str
    version: str
    fixed_in: str
    failure_factor: float  # failure rate times this
    duration_factor: float  # durations times this
    exit_codes: tuple[tuple[int, int], ...]  # of its failures, weighted


REGRESSION = Regression("deploy", "1.3.0", "1.3.1", 3.0, 1.6, ((1, 40), (101, 50), (130, 10)))
# (feature, weight, methods, its own key); the key's values are drawn in Generator.rows.
FEATURES = (
    ("cache", 40, ("read", "write", "evict"), "hit"),  # bool
    ("remote", 20, ("fetch", "push"), "latency_ms"),  # integer
    ("watch", 15, ("fs", "poll"), "paths"),  # integer
    ("plugins", 15, ("load", "call"), "plugin"),  # string, a long tail
    ("completion", 10, ("generate", "install"), "shell"),  # string: the user's shell
)  # fmt: skip
PLUGINS = tuple(f"plugin-{n:02d}" for n in range(60))  # weight 1/rank
CUSTOM_EVENT = "download_finished"  # sent with the SDK's track_custom
# (registry, weight, throughput in MB/s): elapsed_ms follows bytes over this.
REGISTRIES = (("crates.io", 55, 25.0), ("github", 25, 10.0), ("internal", 15, 80.0), ("gitlab", 5, 12.0))
MIRRORS = tuple(f"mirror-{n:03d}.{('eu', 'us', 'ap')[n % 3]}.example.net" for n in range(400))  # weight 1/rank^1.1
MIRROR_SHARE = 0.85  # events that name a mirror
ERRORS = (("network", 45), ("config", 30), ("panic", 10), ("io", 15))
# (event type, category, weight)
EVENT_TYPES = (
    ("command_execution", "usage", 74), ("feature_used", "library", 13), (CUSTOM_EVENT, "custom", 6),
    ("error", "error", 4), ("performance", "performance", 3),
)  # fmt: skip
# (os, OS versions with weights, arch, shell choices, weight, share of these users that are CI machines)
PLATFORMS = (
    ("linux", (("6.8", 35), ("6.5", 20), ("6.1", 25), ("5.15", 15), ("5.10", 5)), "x86_64", ("bash", "zsh", "fish"), 45, 0.15),
    ("linux", (("6.8", 40), ("6.1", 45), ("5.15", 15)), "aarch64", ("bash",), 8, 0.3),
    ("macos", (("15.1", 45), ("14.7", 35), ("13.7", 15), ("12.7", 5)), "aarch64", ("zsh", "bash", "fish"), 25, 0.02),
    ("macos", (("14.7", 40), ("13.7", 35), ("12.7", 25)), "x86_64", ("zsh", "bash"), 7, 0.03),
    ("windows", (("10.0.26100", 30), ("10.0.22631", 45), ("10.0.19045", 25)), "x86_64", ("powershell", "cmd"), 14, 0.05),
    ("freebsd", (("14.1", 70), ("13.4", 30)), "x86_64", ("sh",), 1, 0.0),
)  # fmt: skip
# (version, released this many days before the end of the window): a minor
# every three to five weeks, patches between; the last ones fall in any window.
RELEASES = (
    ("1.0.0", 300), ("1.1.0", 122), ("1.1.1", 108), ("1.2.0", 95), ("1.2.1", 83),
    ("1.2.2", 74), ("1.3.0", 64), ("1.3.1", 52), ("1.4.0", 34), ("1.4.1", 22), ("1.5.0", 9), ("1.5.1", 2),
)  # fmt: skip
PRE_RELEASE = ("1.4.0-rc.1", 41, "1.4.0")  # (version, released days before the end, its final release)
RC_TESTER_SHARE = 0.03  # people who run the pre-release (at least 3 an app)
NIGHTLY = "nightly"
NIGHTLY_USERS = 0.004  # share of people on the nightly build (at least 2 an app)
SDK_VERSIONS = (("telemetry-kit-rust/0.3.0", 85), ("telemetry-kit-rust/0.2.4", 15))
HOUR_WEIGHTS = tuple(0.35 + 0.65 * math.exp(-(((h - 15) / 4.5) ** 2)) for h in range(24))  # UTC, peak mid-afternoon
# Users and their activity (see the module docstring).
HISTORY_DAYS = 150
ARRIVAL_GROWTH = 0.01  # per day
ONE_DAY_SHARE, CORE_SHARE = 0.35, 0.1  # of people; the rest are casual
WEEKEND = 0.4  # a person's chance of being active on a Saturday or Sunday, relative to a weekday
CI_EVENT_SHARE = 0.15
CI_PINNED_SHARE = 0.6
CI_LIFETIME_DAYS = 120.0  # mean
STALE_SHARE = 0.12
UPGRADE_LAG_MEDIAN_DAYS = 4.0
MAX_DAILY_WEIGHT = 50.0  # caps the Pareto draw, so that no single user dominates a small seed
# How a user picks versions.
REGULAR, RC_TESTER, ON_NIGHTLY = 0, 1, 2


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _expanded(weighted) -> tuple:
    """Values repeated by their integer weights: one uniform index picks one."""
    return tuple(value for value, weight in weighted for _ in range(weight))


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


@dataclass(slots=True)
class User:
    user_id: str
    hex: str
    os: str
    os_version: str
    arch: str
    ci: str  # "t" or "f"
    shell: str
    sdk: str
    first: float  # arrival, in days since the window's start (negative: before it)
    lag: float  # days between a release and this user's upgrade to it
    mode: int  # REGULAR, RC_TESTER or ON_NIGHTLY
    core: bool
    active_days: list[int]  # days of the window (0 = first) this user is active on
    weight: float  # events on an active day, relatively


class Generator:
    """Builds event rows for one app; deterministic for a given seed (but for event ids)."""

    def __init__(self, plan: SeedPlan, app: AppPlan):
        self.plan, self.app = plan, app
        rng = random.Random(f"{plan.seed}:{app.name}")
        days = plan.days
        # Days are UTC days, the last one the end's own, cut at the end: `days` days
        # touched, so that a user's active day is a calendar day, as the pages count.
        last_midnight = plan.end.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        start_day = last_midnight - timedelta(days=days - 1)
        self.start = start_day.timestamp()
        self.last_hours = (plan.end - last_midnight).total_seconds() / 3600  # of the last day, before the end
        weekend = [(start_day + timedelta(days=d)).weekday() >= 5 for d in range(days)]
        # Releases in days since the window's start.
        span = (plan.end.timestamp() - self.start) / 86400
        self.release_times = [span - before for _, before in RELEASES]
        self.release_names = [version for version, _ in RELEASES]
        self.rc_time = span - PRE_RELEASE[1]
        self.final_time = span - dict(RELEASES)[PRE_RELEASE[2]]
        self.users = self._users(rng, days, weekend)
        # Per day: the users active on it and their cumulative weights; days weigh what their users do.
        day_users: list[list[int]] = [[] for _ in range(days)]
        for index, user in enumerate(self.users):
            for day in user.active_days:
                day_users[day].append(index)
        self.day_users = [array("l", indexes) for indexes in day_users]
        self.day_user_cum = [array("d", _cumulative(self.users[i].weight for i in indexes)) for indexes in day_users]
        # People's hours of the day (CI machines' are uniform), and how much of them the last day had.
        self.hour_cum = _cumulative(HOUR_WEIGHTS)
        self.hour_base = [total - weight for total, weight in zip(self.hour_cum, HOUR_WEIGHTS)]
        whole = int(self.last_hours)
        self.last_day_hours = (self.hour_cum[whole - 1] if whole else 0.0) + (
            HOUR_WEIGHTS[whole] * (self.last_hours - whole) if whole < 24 else 0.0
        )
        day_weights = [cum[-1] if len(cum) else 0.0 for cum in self.day_user_cum]
        day_weights[-1] *= self.last_day_hours / self.hour_cum[-1]
        self.day_cum = _cumulative(day_weights)
        if not self.day_cum[-1]:
            raise ValueError(f"no user is active in the {days} days before {plan.end}")
        self.type_cum = _cumulative(t[2] for t in EVENT_TYPES)
        self.command_cum = _cumulative(c[1] for c in COMMANDS)
        self.subcommands = [_expanded(c[4]) for c in COMMANDS]
        # A fixed set of flag lists per command, drawn once: one draw per run instead of one per flag.
        self.flag_sets = [
            [_json_list([flag for flag, chance in c[5] if rng.random() < chance]) for _ in range(FLAG_SETS)]
            for c in COMMANDS
        ]
        self.exit_codes = _expanded(FAILURE_EXIT_CODES)
        self.regression_exit_codes = _expanded(REGRESSION.exit_codes)
        self.feature_cum = _cumulative(f[1] for f in FEATURES)
        self.plugin_cum = _cumulative(1 / (rank + 1) for rank in range(len(PLUGINS)))
        self.registry_cum = _cumulative(r[1] for r in REGISTRIES)
        self.mirror_cum = _cumulative(1 / (rank + 1) ** 1.1 for rank in range(len(MIRRORS)))
        self.error_cum = _cumulative(e[1] for e in ERRORS)

    def _users(self, rng: random.Random, days: int, weekend: list[bool]) -> list[User]:
        """Users seen in the window, in order of arrival draw: app.users of them if
        the window has room (the draws that are never active in it are left out)."""
        platform_cum = _cumulative(p[4] for p in PLATFORMS)
        growth, low, high = ARRIVAL_GROWTH, math.exp(-ARRIVAL_GROWTH * HISTORY_DAYS), math.exp(ARRIVAL_GROWTH * days)
        users: list[User] = []
        draws = 0
        while len(users) < self.app.users and draws < 50 * self.app.users:
            draws += 1
            os_name, os_versions, arch, shells, _, ci_share = PLATFORMS[
                bisect.bisect(platform_cum, rng.random() * platform_cum[-1])
            ]
            ci = rng.random() < ci_share
            first = math.log(low + rng.random() * (high - low)) / growth  # density ~ exp(growth * t)
            first_day = math.floor(first)
            core = False
            if ci:
                chance, constant, last = 0.92, None, first + rng.expovariate(1 / CI_LIFETIME_DAYS)
            else:
                kind, last = rng.random(), math.inf
                if kind < ONE_DAY_SHARE:
                    chance, constant = 0.0, None
                elif kind < ONE_DAY_SHARE + CORE_SHARE:
                    chance, constant, core = rng.uniform(0.55, 0.9), None, True
                else:
                    chance, constant = rng.uniform(0.1, 0.45), 1 + rng.expovariate(1 / 10)
            active = []
            for day in range(max(0, first_day), days):
                age = day - first_day
                if age == 0:
                    active.append(day)
                    continue
                if day > last:
                    break
                p = chance if constant is None else chance * math.exp(-age / constant)
                if p < 0.002:
                    break
                if weekend[day] and not ci:
                    p *= WEEKEND
                if rng.random() < p:
                    active.append(day)
            if not active:
                continue  # never seen in the window
            weight = min(rng.paretovariate(1.3), MAX_DAILY_WEIGHT) * (3.0 if core else 1.0)
            if ci:
                pinned = rng.random() < CI_PINNED_SHARE
                lag = 1e9 if pinned else rng.lognormvariate(math.log(UPGRADE_LAG_MEDIAN_DAYS), 0.8)
            elif rng.random() < STALE_SHARE:
                lag = rng.uniform(45, 300)
            else:
                lag = rng.lognormvariate(math.log(UPGRADE_LAG_MEDIAN_DAYS), 1.0)
            os_version_cum = _cumulative(share for _, share in os_versions)
            os_version = os_versions[bisect.bisect(os_version_cum, rng.random() * os_version_cum[-1])][0]
            shell, sdk = rng.choice(shells), SDK_VERSIONS[0][0] if rng.random() < 0.85 else SDK_VERSIONS[1][0]
            number = len(users)
            users.append(
                User(
                    user_id="client_" + hashlib.sha256(f"{self.app.name}:{number}".encode()).hexdigest(),
                    hex=f"{number:08x}", os=os_name, os_version=os_version, arch=arch,
                    ci="t" if ci else "f", shell=shell, sdk=sdk, first=first, lag=lag, mode=REGULAR, core=core,
                    active_days=active, weight=weight,
                )
            )  # fmt: skip
        people = [user for user in users if user.ci == "f"]
        # A handful on the nightly build; a few more try the pre-release (people active once it is out).
        for user in rng.sample(people, min(len(people), max(2, round(NIGHTLY_USERS * len(people))))):
            user.mode = ON_NIGHTLY
        testers = [
            user for user in people
            if user.mode == REGULAR and any(self.rc_time <= day + 1 and day < self.final_time + user.lag for day in user.active_days)
        ]  # fmt: skip
        for user in rng.sample(testers, min(len(testers), max(3, round(RC_TESTER_SHARE * len(people))))):
            user.mode = RC_TESTER
        # CI machines send CI_EVENT_SHARE of the events, however many active days they have.
        machine = sum(u.weight * len(u.active_days) for u in users if u.ci == "t")
        human = sum(u.weight * len(u.active_days) for u in people)
        if machine and human:
            scale = CI_EVENT_SHARE / (1 - CI_EVENT_SHARE) * human / machine
            for user in users:
                if user.ci == "t":
                    user.weight *= scale
        return users

    def version_at(self, user: User, moment: float) -> str:
        """The version `user` runs `moment` days after the window's start."""
        if user.mode == ON_NIGHTLY:
            return NIGHTLY
        # The newest release out when the user arrived, or out `lag` days before now.
        index = max(0, bisect.bisect_right(self.release_times, max(user.first, moment - user.lag)) - 1)
        if user.mode == RC_TESTER and moment >= self.rc_time and self.release_times[index] < self.final_time:
            return PRE_RELEASE[0]
        return self.release_names[index]

    def rows(self, count: int, seed: int):
        """`count` rows as tuples of COLUMNS, all text in PostgreSQL's form (ISO times, t/f, JSON)."""
        rng = random.Random(seed)
        rand, choice, gauss = rng.random, bisect.bisect, rng.gauss
        app_pk, end, iso = str(self.app.pk), self.plan.end.timestamp(), _iso_text()
        start, users, day_users, day_user_cum = self.start, self.users, self.day_users, self.day_user_cum
        day_cum, hour_cum, hour_base, type_cum, command_cum = (
            self.day_cum, self.hour_cum, self.hour_base, self.type_cum, self.command_cum,
        )  # fmt: skip
        day_total, hour_total, type_total, command_total = day_cum[-1], hour_cum[-1], type_cum[-1], command_cum[-1]
        last_day, last_hours, last_day_hours = len(day_cum) - 1, self.last_hours, self.last_day_hours
        subcommands, flag_sets, exit_codes, regression_exit_codes = (
            self.subcommands, self.flag_sets, self.exit_codes, self.regression_exit_codes,
        )  # fmt: skip
        version_at, slow = self.version_at, REGRESSION
        ids = os.urandom(16 * count).hex()
        service = self.app.name
        for i in range(count):
            day = choice(day_cum, rand() * day_total)
            cum = day_user_cum[day]
            user = users[day_users[day][choice(cum, rand() * cum[-1])]]
            # People mostly in the afternoon (UTC), CI machines at any hour; the last day only up to the end.
            if user.ci == "f":
                x = rand() * (last_day_hours if day == last_day else hour_total)
                hour = choice(hour_cum, x)
                hours = hour + (x - hour_base[hour]) / HOUR_WEIGHTS[hour]
            else:
                hours = rand() * (last_hours if day == last_day else 24.0)
            moment = min(start + day * 86400 + hours * 3600, end)
            # A few sessions per user and day.
            session = f"sess_{user.hex}{day:04x}{int(rand() * 3):04x}{'0' * 16}"
            version = version_at(user, (moment - start) / 86400)
            kind, category, _ = EVENT_TYPES[choice(type_cum, rand() * type_total)]
            if kind == "command_execution":
                c = choice(command_cum, rand() * command_total)
                name, _, success_rate, median, _, _ = COMMANDS[c]
                failure, codes = 1 - success_rate, exit_codes
                if name == slow.command and version == slow.version:
                    failure, median = failure * slow.failure_factor, median * slow.duration_factor
                    codes = regression_exit_codes
                code = 0 if rand() >= failure else codes[int(rand() * len(codes))]
                duration = int(median * math.exp(gauss(0, 0.9)))
                flags = flag_sets[c][int(rand() * FLAG_SETS)]
                subs = subcommands[c]
                sub = f',"subcommand":"{subs[int(rand() * len(subs))]}"' if subs else ""
                data = (
                    f'{{"command":"{name}","duration_ms":{duration},"exit_code":{code},"flags":{flags}{sub},'
                    f'"success":{"false" if code else "true"}}}'
                )
            elif kind == "feature_used":
                name, _, methods, key = FEATURES[choice(self.feature_cum, rand() * self.feature_cum[-1])]
                if key == "hit":
                    value = "true" if rand() < 0.8 else "false"
                elif key == "latency_ms":
                    value = str(int(rng.lognormvariate(5, 0.8)))
                elif key == "paths":
                    value = str(1 + int(rng.paretovariate(1.5)))
                elif key == "plugin":
                    value = f'"{PLUGINS[choice(self.plugin_cum, rand() * self.plugin_cum[-1])]}"'
                else:
                    value = f'"{user.shell}"'
                data = (
                    f'{{"feature":"{name}","method":"{methods[int(rand() * len(methods))]}",'
                    f'"success":{"true" if rand() < 0.97 else "false"},"{key}":{value}}}'
                )
            elif kind == CUSTOM_EVENT:
                registry, _, throughput = REGISTRIES[choice(self.registry_cum, rand() * self.registry_cum[-1])]
                size = rng.lognormvariate(14.5, 1.5)  # median about 2 MB
                elapsed = 30 + size / (throughput * 1000) * math.exp(gauss(0, 0.4))
                mirror = (
                    f',"mirror":"{MIRRORS[choice(self.mirror_cum, rand() * self.mirror_cum[-1])]}"'
                    if rand() < MIRROR_SHARE else ""
                )  # fmt: skip
                data = (
                    f'{{"bytes":{size:.1f},"elapsed_ms":{elapsed:.2f},"files":{float(1 + int(size / 150_000))}'
                    f'{mirror},"registry":"{registry}"}}'
                )
            elif kind == "error":
                name = ERRORS[choice(self.error_cum, rand() * self.error_cum[-1])][0]
                data = f'{{"error_kind":"{name}","success":false}}'
            else:
                data = f'{{"duration_ms":{int(rng.lognormvariate(5, 1))},"metric":"startup"}}'
            h = ids[32 * i : 32 * i + 32]
            received = min(end, moment + rng.expovariate(1 / 90))
            yield (
                app_pk, f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}", iso(moment), iso(received), "1.0.0", kind,
                category, user.user_id, session, service, version, "rust", "1.75.0", user.os, user.os_version,
                user.arch, user.ci, user.shell, user.sdk, data,
            )  # fmt: skip


def _iso_text():
    """A function from a POSIX time to its ISO 8601 text in UTC (microseconds, "+00:00"),
    about three times as fast as formatting a datetime: each hour's prefix is made once."""
    prefixes: dict[int, str] = {}

    def iso(moment: float) -> str:
        hour = int(moment // 3600)
        prefix = prefixes.get(hour)
        if prefix is None:
            prefix = prefixes[hour] = datetime.fromtimestamp(hour * 3600, timezone.utc).strftime("%Y-%m-%dT%H:")
        minute, micros = divmod(int((moment - hour * 3600) * 1_000_000), 60_000_000)
        return f"{prefix}{minute:02d}:{micros // 1_000_000:02d}.{micros % 1_000_000:06d}+00:00"

    return iso


def _json_list(values: list[str]) -> str:
    """A JSON list of plain strings (no quotes or backslashes in them), without a space."""
    return "[" + ",".join(f'"{value}"' for value in values) + "]"


# --- Writing ------------------------------------------------------------------------------

_GENERATORS: dict[int, Generator] = {}


def _copy_text(unit: tuple[int, int, int], plan: SeedPlan) -> tuple[int, bytes]:
    """One unit of rows in COPY text format (the values contain no tab, newline or backslash)."""
    index, count, seed = unit
    generator = _GENERATORS.get(index) or _GENERATORS.setdefault(index, Generator(plan, plan.apps[index]))
    return count, ("\n".join(map("\t".join, generator.rows(count, seed))) + "\n").encode()


_PLAN: SeedPlan | None = None


def _init_worker(plan: SeedPlan) -> None:
    global _PLAN
    _PLAN = plan


def _copy_text_in_worker(unit):
    return _copy_text(unit, _PLAN)


def write_postgresql(plan: SeedPlan, *, jobs: int, progress) -> int:
    from telemetry.databases import events_connection as connection

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
    from telemetry.databases import events_atomic
    from telemetry.databases import events_connection as connection

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
            values[0] = int(values[0])
            values[1] = values[1].replace("-", "")  # Django keeps UUIDs as 32 hex digits here
            values[2] = ops.adapt_datetimefield_value(datetime.fromisoformat(values[2]))
            values[3] = ops.adapt_datetimefield_value(datetime.fromisoformat(values[3]))
            values[16] = values[16] == "t"
            params.append(values)
        with events_atomic(), connection.cursor() as cursor:
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
    """Rebuild whatever is derived from raw events, run what the scheduler would
    within the hour, then refresh planner statistics."""
    from django.core.management import call_command, get_commands
    from telemetry.databases import events_connection as connection

    if "rebuild_rollups" in get_commands():
        started = time.monotonic()
        call_command("rebuild_rollups", *(app.public_id for app in apps), stdout=open(os.devnull, "w"))
        progress(f"rebuild_rollups took {time.monotonic() - started:.0f} s")
    else:
        progress("no rebuild_rollups command: aggregates not rebuilt")
    # What a running server's scheduler does within the hour (its `rollups` and
    # `properties` jobs), so the pages are timed as a deployment serves them.
    if "refresh_rollups" in get_commands():
        started = time.monotonic()
        call_command("refresh_rollups", *(app.public_id for app in apps), stdout=open(os.devnull, "w"))
        progress(f"refresh_rollups (the scheduler's hourly daily rollups and sketches) took {time.monotonic() - started:.0f} s")
    try:
        from telemetry import property_summaries
    except ImportError:
        property_summaries = None
    if property_summaries is not None:
        started = time.monotonic()
        now = datetime.now(timezone.utc)
        while True:
            result = property_summaries.refresh_apps([app.pk for app in apps], now=now)
            if result.failed:
                progress(f"property summaries failed: {', '.join(result.failed[:5])}")
            if not result.left or result.failed:
                break
        progress(f"property summaries (the scheduler's properties job) took {time.monotonic() - started:.0f} s")
    if connection.vendor in ("postgresql", "sqlite"):
        with connection.cursor() as cursor:
            # Every table, last: the rollups, their caches and the property summaries
            # were all just written, and autovacuum may be off or behind.
            cursor.execute("ANALYZE")


# --- Entry points ------------------------------------------------------------------------------


def demo_apps(*, total: int, replace: bool) -> list[AppPlan]:
    """The demo organization's apps, created if needed, with their share of `total` events."""
    from telemetry.databases import events_connection as connection

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
    from telemetry.databases import events_connection as connection

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
    from telemetry.databases import events_connection as connection

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
