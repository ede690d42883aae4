"""The periodic background jobs, and the loop that runs them.

Every job is one line of JOBS below: a name, how often it runs, how long a
run may hold the job (its lease), and a function taking `now`. Adding a job
is adding a line there; nothing else needs to know about it. Apps above
telemetry (alerts), which telemetry may not import (README, Layout), add
their jobs with add_job() from their AppConfig.ready(); they run after JOBS.

`manage.py run_scheduler` loops over the jobs; gunicorn starts it beside its
workers (config/gunicorn.py), so `make serve` and the image need no cron. Any
number of runners may run against one database (several instances, a
standalone `run_scheduler`, a cron'd `run_scheduler --once`):

- Each run is claimed with one conditional UPDATE of the job's ScheduledJob
  row: "due, and no live lease". Of runners racing for it exactly one updates
  the row, on SQLite (one writer at a time) and on PostgreSQL (the second
  UPDATE waits for the first's row lock, then re-checks the condition and
  finds the new lease). It is a single autocommit statement, so it works
  through PgBouncer in transaction mode: no advisory lock, no LISTEN, no SET.
- A run that raises is logged with its traceback and recorded (last_error,
  failures), retried after RETRY_AFTER (or its period, if shorter); the
  other jobs go on.
- A runner that dies mid-run leaves its lease behind; the lease ends `lease`
  after the claim and another runner takes the job then. A run that outlasts
  its lease may thus overlap the next one, so leases are set well above a
  run's expected length, and every job here survives an overlap: retention
  deletes with SKIP LOCKED, and where two runs build the same thing the
  second fails, is recorded and runs again later.
- Jobs that run every minute or more often have a lane (thread) of their own,
  so an hourly job that takes minutes does not hold them up; the fold has one
  to itself, so no other job (a slow webhook receiver, say) delays it. Within
  a lane, jobs run one at a time in JOBS order.
- A database outage is logged and retried with backoff; the loop never dies
  of it.

Times come from the runners' clocks, which therefore must agree (NTP), as
the ingest signatures already require.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import F, Q
from django.utils import timezone

from organizations.models import App
from telemetry import partitions, property_summaries, storage
from telemetry.management.commands.purge_events import purge_apps
from telemetry.management.commands.refresh_rollups import refresh_apps
from telemetry.models import ScheduledJob
from telemetry.periods import HOUR

logger = logging.getLogger(__name__)

# A failed run is tried again this soon (or after its period, if shorter).
RETRY_AFTER = timedelta(minutes=5)
# Jobs this frequent run in a lane (thread) of their own, beside the hourly ones.
FREQUENT = timedelta(minutes=1)
# The loop looks at the jobs' rows at least this often, whatever is due.
MAX_SLEEP_SECONDS = 60.0
# Waits after a database error: 1 s, doubling up to this.
MAX_BACKOFF_SECONDS = 60.0
# A job is overdue when it has not succeeded for its period plus this much
# (at least a period): one missed run is noise, two are a problem.
OVERDUE_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Job:
    name: str
    period: timedelta
    run: Callable[[datetime], str | None]  # gets the claim's time; returns a summary for the log, or None
    lease: timedelta  # how long a run may take before another runner may start the job again
    # The thread it runs in beside the others (module docstring); "" for the default:
    # the frequent lane for jobs every minute or more often, the main one for the rest.
    lane: str = ""

    @property
    def lane_name(self) -> str:
        return self.lane or ("frequent" if self.period <= FREQUENT else "main")


class JobFailed(Exception):
    """A job finished its work but part of it failed (already logged item by item)."""


# --- The jobs ----------------------------------------------------------------------


def create_and_drop_partitions(now: datetime) -> str:
    """The coming time partitions made, and those wholly past retention dropped (PostgreSQL)."""
    created = partitions.ensure_partitions(now=now, ahead=3)  # as `manage.py create_partitions`
    dropped = partitions.drop_expired_partitions(now=now)
    return f"{len(created)} partitions created, {len(dropped)} dropped"


def purge_expired(now: datetime) -> str:
    """Every app's events past retention deleted (stamping App.retention_last_run_at),
    then the expired nonces: `manage.py purge_events`'s work."""
    result = purge_apps(App.objects.select_related("organization").order_by("pk"), now=now)
    if result.failed:
        raise JobFailed(f"{len(result.failed)} apps failed: {', '.join(result.failed[:5])}")
    return f"{result.deleted} events deleted, {result.nonces} expired nonces"


def refresh_daily(now: datetime) -> str:
    """Every app's daily rollups and sketches brought up to date: `manage.py refresh_rollups`'s work."""
    result = refresh_apps(App.objects.order_by("pk"))
    if result.failed:
        raise JobFailed(f"{len(result.failed)} apps failed: {', '.join(result.failed[:5])}")
    return f"{result.built} sketches built"


def refresh_properties(now: datetime) -> str:
    """The property summaries of closed days and recent hours that are missing or stale built, for
    at most four minutes a run (the rest next time), and hour blocks past 48 hours dropped."""
    result = property_summaries.refresh_apps(list(App.objects.order_by("pk").values_list("pk", flat=True)), now=now)
    summary = f"{result.built} property summaries built, {result.left} left for the next run, {result.pruned} hour summaries dropped"
    if result.failed:
        raise JobFailed(f"{len(result.failed)} builds failed ({', '.join(result.failed[:5])}); {summary}")
    return summary


def fold_rollups(now: datetime) -> str:
    """Move the rollup deltas that ingest and deletions appended into the hourly rollups."""
    result = storage.fold_rollup_deltas()
    lag = f", the oldest {(now - result.oldest).total_seconds():.1f} s old" if result.oldest else ""
    return f"{result.folded} rollup deltas folded{lag}"


# Run in this order when several are due at once: partitions are dropped before
# retention deletes what is left row by row.
JOBS: list[Job] = [
    Job("partitions", HOUR, create_and_drop_partitions, lease=timedelta(minutes=10)),
    Job("retention", HOUR, purge_expired, lease=timedelta(minutes=30)),
    Job("rollups", HOUR, refresh_daily, lease=timedelta(minutes=30)),
    # Every 5 min: a run builds for at most 4 minutes (docs/insights.md, Properties).
    Job("properties", timedelta(minutes=5), refresh_properties, lease=timedelta(minutes=15)),
    # Every 2 s, in a lane of its own (no other job can hold it up): reads add the unfolded deltas, so the fold
    # only keeps that tail short (docs/storage.md, Rollups). A run takes well under
    # a second; the lease covers a backlog after downtime.
    Job("fold", timedelta(seconds=2), fold_rollups, lease=timedelta(minutes=2), lane="fold"),
]


# The jobs of apps that telemetry may not import, added by add_job() (module docstring).
ADDED_JOBS: list[Job] = []


def add_job(job: Job) -> None:
    """Run `job` after JOBS; an app calls it from AppConfig.ready() (a second call with the name is ignored)."""
    if all(known.name != job.name for known in [*JOBS, *ADDED_JOBS]):
        ADDED_JOBS.append(job)


def jobs(*, strict: bool = True) -> list[Job]:
    """JOBS and ADDED_JOBS with the periods of settings.CLACKS_SCHEDULER_PERIODS. An unknown job
    name there raises ImproperlyConfigured, unless not `strict` (pages and /health show what they can)."""
    periods = settings.CLACKS_SCHEDULER_PERIODS
    every = [*JOBS, *ADDED_JOBS]
    unknown = set(periods) - {job.name for job in every}
    if unknown and strict:
        known = ", ".join(job.name for job in every)
        raise ImproperlyConfigured(f"CLACKS_SCHEDULER_PERIODS: no job named {', '.join(sorted(unknown))} ({known})")
    return [replace(job, period=timedelta(seconds=periods[job.name])) if job.name in periods else job for job in every]


# --- Leases ------------------------------------------------------------------------


def register(jobs: Sequence[Job], *, now: datetime) -> None:
    """Make sure every job has its row (INSERT ... ON CONFLICT DO NOTHING; safe to race)."""
    ScheduledJob.objects.bulk_create([ScheduledJob(name=job.name, created_at=now) for job in jobs], ignore_conflicts=True)


def claim(job: Job, *, now: datetime, owner: str) -> bool:
    """True if this owner got the run due now: one UPDATE, so one claimant at most."""
    due = Q(next_due_at__isnull=True) | Q(next_due_at__lte=now) | Q(last_started_at__lte=now - job.period)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    claimed = ScheduledJob.objects.filter(due, free, name=job.name).update(
        lease_owner=owner[:200], lease_until=now + job.lease, last_started_at=now, next_due_at=now + job.period
    )
    return claimed == 1


def finish(job: Job, *, owner: str, started: datetime, finished: datetime, error: str | None,
           due_again: datetime | None = None) -> bool:
    """Record the run and release the lease; False if the lease had expired and was taken meanwhile.

    A failed run is due again after RETRY_AFTER (or its period) unless `due_again` says when."""
    fields = {
        "lease_owner": "",
        "lease_until": None,
        "last_finished_at": finished,
        "last_duration": finished - started,
        "runs": F("runs") + 1,
    }
    if error is None:
        fields |= {"last_succeeded_at": finished, "last_error": ""}
    else:
        retry = due_again or min(started + job.period, finished + RETRY_AFTER)
        fields |= {"last_error": error[:300], "failures": F("failures") + 1, "next_due_at": retry}
    return ScheduledJob.objects.filter(name=job.name, lease_owner=owner[:200]).update(**fields) == 1


def _due_at(job: Job, row: ScheduledJob | None, *, now: datetime) -> datetime:
    """When a runner may next claim the job (`now` or earlier: it may now)."""
    if row is None:
        return now
    due = row.next_due_at or now
    if row.last_started_at is not None:
        due = min(due, row.last_started_at + job.period)  # a period shortened since the last run
    if row.lease_until is not None and row.lease_until > now:
        due = max(due, row.lease_until)
    return due


def describe(exc: BaseException) -> str:
    """The exception's type and the first line of its message: no DETAIL lines with row
    values, no tracebacks (those are in the log)."""
    message = str(exc).strip()
    first_line = message.splitlines()[0] if message else ""
    return f"{type(exc).__name__}: {first_line}"[:300] if first_line else type(exc).__name__


# --- The loop ----------------------------------------------------------------------


class Interrupted(SystemExit):
    """Raised in a running job when the scheduler is told to stop. A SystemExit so that
    psycopg cancels the query in flight (it does for SystemExit and KeyboardInterrupt)."""


INTERRUPTED = "Interrupted: the scheduler was stopped during the run"


@dataclass(frozen=True)
class Outcome:
    job: str
    status: str  # "done", "failed", "interrupted", or "skipped" (not due, or running elsewhere)
    detail: str = ""


class Runner:
    """Runs the due jobs, one at a time in their order within a lane; see the module docstring."""

    def __init__(self, jobs: Sequence[Job], *, parent_pid: int | None = None):
        self.jobs = list(jobs)
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = threading.Event()
        self.parent_pid = parent_pid  # stop when this process is no longer the parent
        self._registered = False
        self._in_job = False

    # -- One pass --

    def run_due(self, jobs: Sequence[Job] | None = None) -> list[Outcome]:
        """Claim and run every job (of `jobs`, default all) that is due now; the others are reported skipped."""
        jobs = self.jobs if jobs is None else jobs
        now = timezone.now()
        if not self._registered:
            register(self.jobs, now=now)
            self._registered = True
        rows = ScheduledJob.objects.in_bulk([job.name for job in jobs])
        outcomes = []
        for job in jobs:
            if self.stopping.is_set():
                break
            row, now = rows.get(job.name), timezone.now()
            if _due_at(job, row, now=now) > now:  # no UPDATE for what is plainly not due
                busy = row is not None and row.lease_until is not None and row.lease_until > now
                outcomes.append(Outcome(job.name, "skipped", "running elsewhere" if busy else "not due"))
                continue
            outcomes.append(self.run_one(job))
        return outcomes

    def run_one(self, job: Job) -> Outcome:
        owner = f"{self.identity}:{secrets.token_hex(4)}"
        started = timezone.now()
        if not claim(job, now=started, owner=owner):
            return Outcome(job.name, "skipped", "taken by another runner")
        summary, error = self._call(job, started)
        finished = timezone.now()
        seconds = (finished - started).total_seconds()
        if error == INTERRUPTED:
            finish(job, owner=owner, started=started, finished=finished, error=error, due_again=finished)
            logger.warning("job %s interrupted after %.1f s; due again at once", job.name, seconds,
                           extra={"job": job.name, "seconds": round(seconds, 3)})
            return Outcome(job.name, "interrupted", error)
        if not finish(job, owner=owner, started=started, finished=finished, error=error):
            logger.warning("job %s ran longer than its lease (%s); its run was not recorded", job.name, job.lease,
                           extra={"job": job.name, "seconds": round(seconds, 3)})
        if error is not None:
            return Outcome(job.name, "failed", error)
        # A job every few seconds would fill the log with these lines.
        level = logging.INFO if job.period >= timedelta(minutes=1) else logging.DEBUG
        logger.log(level, "job %s done in %.1f s: %s", job.name, seconds, summary or "ok",
                   extra={"job": job.name, "seconds": round(seconds, 3)})
        return Outcome(job.name, "done", summary or "")

    def _call(self, job: Job, now: datetime) -> tuple[str | None, str | None]:
        """(summary, None) when the job returned, (None, error) when it raised."""
        # Signals reach the main thread only: only a job running there can be interrupted.
        interruptible = threading.current_thread() is threading.main_thread()
        try:
            self._in_job = interruptible
            try:
                return job.run(now), None
            finally:
                self._in_job = False
        except Interrupted:
            return None, INTERRUPTED
        except Exception as exc:
            # One job failing must not stop the others, nor the loop.
            logger.exception("job %s failed", job.name, extra={"job": job.name})
            return None, describe(exc)

    # -- The loop --

    def seconds_to_next_due(self, jobs: Sequence[Job]) -> float:
        now = timezone.now()
        rows = ScheduledJob.objects.in_bulk([job.name for job in jobs])
        soonest = min(_due_at(job, rows.get(job.name), now=now) for job in jobs)
        return min(max((soonest - now).total_seconds(), 0.05), MAX_SLEEP_SECONDS)

    def run_forever(self) -> None:
        """Loop until stopped: each lane's jobs (Job.lane_name) in a thread of their own, so
        that an hourly job running for minutes does not hold up the frequent ones, nor any
        of them the fold; the main lane here, where signals can interrupt its runs."""
        lanes: dict[str, list[Job]] = {}
        for job in self.jobs:
            lanes.setdefault(job.lane_name, []).append(job)
        here = lanes.pop("main", None) or (lanes.pop(next(iter(lanes))) if lanes else [])
        threads = [
            threading.Thread(target=self._lane, args=(jobs,), name=f"scheduler-{name}", daemon=True)
            for name, jobs in lanes.items()
        ]
        for thread in threads:
            thread.start()
        self._lane(here)
        for thread in threads:
            thread.join(timeout=30)  # their runs are short: each stops within one

    def _lane(self, jobs: Sequence[Job]) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                close_old_connections()
                self.run_due(jobs)
                pause = self.seconds_to_next_due(jobs)
                backoff = 1.0
            except DatabaseError as exc:
                # The server away, or the table not migrated yet: both pass.
                logger.warning("scheduler: database error (%s); trying again in %.0f s", describe(exc), backoff)
                self._reset()
                pause, backoff = backoff, min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception:
                logger.exception("scheduler: unexpected error; trying again in %.0f s", backoff)
                self._reset()
                pause, backoff = backoff, min(backoff * 2, MAX_BACKOFF_SECONDS)
            self._sleep(pause)
        connections.close_all()  # this thread's own

    def _reset(self) -> None:
        """Drop this thread's connection (the next query opens a new one) and register again."""
        self._registered = False
        try:
            connections.close_all()
        except DatabaseError:
            pass  # closing a connection to a server that is gone

    def _sleep(self, seconds: float) -> None:
        # In steps of a second at most, to notice a parent that died without telling us.
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stopping.wait(min(left, 1.0))
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                logger.warning("scheduler: the server that started it is gone; stopping")
                self.stopping.set()

    # -- Stopping --

    def stop_on_signals(self) -> None:
        """SIGTERM and SIGINT stop the loop; a job running then is interrupted (its
        transaction rolls back, its lease is released and it is due again at once)."""

        def stop(signum, frame):
            self.stopping.set()
            if self._in_job:
                raise Interrupted()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


# --- What the dashboard and /health show ---------------------------------------------------


@dataclass(frozen=True)
class JobState:
    name: str
    period: timedelta
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_succeeded_at: datetime | None
    last_duration: timedelta | None
    last_error: str
    runs: int
    failures: int
    running: bool
    overdue: bool

    @property
    def last_ok(self) -> bool | None:
        """Whether the last finished run succeeded; None before any has finished."""
        return None if self.last_finished_at is None else not self.last_error

    @property
    def every(self) -> str:
        return period_text(self.period)


def period_text(period: timedelta) -> str:
    """"1 h", "10 min", "2 s"."""
    seconds = int(period.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def job_states(*, now: datetime | None = None) -> list[JobState]:
    """Every registered job's last run, in JOBS order. Overdue: no success for longer than
    its period plus grace (counted from its first registration when it never succeeded,
    and always when no scheduler ever registered it)."""
    now = now or timezone.now()
    current = jobs(strict=False)
    rows = ScheduledJob.objects.in_bulk([job.name for job in current])
    states = []
    for job in current:
        row = rows.get(job.name) or ScheduledJob(name=job.name)
        registered = job.name in rows
        since = row.last_succeeded_at or (row.created_at if registered else None)
        allowed = job.period + max(job.period, OVERDUE_GRACE)
        states.append(
            JobState(
                name=job.name,
                period=job.period,
                last_started_at=row.last_started_at,
                last_finished_at=row.last_finished_at,
                last_succeeded_at=row.last_succeeded_at,
                last_duration=row.last_duration,
                last_error=row.last_error,
                runs=row.runs,
                failures=row.failures,
                running=row.lease_until is not None and row.lease_until > now,
                overdue=since is None or now - since > allowed,
            )
        )
    return states
