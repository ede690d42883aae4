"""telemetry.scheduler: leases claimed once, failures recorded, the real jobs, and what
/health and the dashboard show. Runners in separate processes: tests/operations/test_scheduler.py."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from organizations.models import App
from telemetry import scheduler
from telemetry.models import Event, HourlyRollup, RollupDelta, ScheduledJob, UsedNonce
from telemetry.scheduler import Job, Runner
from tests.factories import make_user
from tests.organizations.conftest import store_events

MINUTE = timedelta(minutes=1)


def job(name: str = "tick", *, run=lambda now: "ok", period=timedelta(hours=1), lease=timedelta(minutes=10)) -> Job:
    return Job(name, period, run, lease=lease)


def row(name: str) -> ScheduledJob:
    return ScheduledJob.objects.get(name=name)


# --- Claims and leases -----------------------------------------------------------------


def test_a_due_job_is_claimed_by_one_owner_and_not_again_until_its_period_has_passed(db):
    tick, now = job(), timezone.now()
    scheduler.register([tick], now=now)

    assert scheduler.claim(tick, now=now, owner="a")
    assert not scheduler.claim(tick, now=now, owner="b")  # leased
    assert scheduler.finish(tick, owner="a", started=now, finished=now + timedelta(seconds=2), error=None)
    assert not scheduler.claim(tick, now=now + timedelta(minutes=59), owner="b")  # done, not due yet
    assert scheduler.claim(tick, now=now + timedelta(minutes=60), owner="b")

    record = row("tick")
    assert record.runs == 1 and record.failures == 0
    assert record.last_duration == timedelta(seconds=2)
    assert record.last_succeeded_at == now + timedelta(seconds=2)
    assert record.lease_owner == "b"


def test_registering_again_keeps_the_record(db):
    tick, now = job(), timezone.now()
    scheduler.register([tick], now=now)
    scheduler.claim(tick, now=now, owner="a")
    scheduler.register([tick], now=now + MINUTE)  # another runner starting

    assert row("tick").lease_owner == "a"
    assert ScheduledJob.objects.count() == 1


def test_an_expired_lease_is_taken_over_and_the_dead_runner_cannot_record(db):
    tick, now = job(period=MINUTE, lease=timedelta(minutes=10)), timezone.now()
    scheduler.register([tick], now=now)
    assert scheduler.claim(tick, now=now, owner="crashed")

    assert not scheduler.claim(tick, now=now + timedelta(minutes=5), owner="b")  # due, but the lease holds
    assert scheduler.claim(tick, now=now + timedelta(minutes=11), owner="b")
    late = now + timedelta(minutes=12)
    assert not scheduler.finish(tick, owner="crashed", started=now, finished=late, error=None)
    assert scheduler.finish(tick, owner="b", started=now + timedelta(minutes=11), finished=late, error=None)
    assert row("tick").runs == 1


def test_a_shorter_period_applies_without_waiting_for_the_old_one(db):
    now = timezone.now()
    hourly = job(period=timedelta(hours=1))
    scheduler.register([hourly], now=now)
    scheduler.claim(hourly, now=now, owner="a")
    scheduler.finish(hourly, owner="a", started=now, finished=now, error=None)

    every_ten_minutes = job(period=timedelta(minutes=10))
    assert scheduler.claim(every_ten_minutes, now=now + timedelta(minutes=10), owner="a")


# --- Runner ------------------------------------------------------------------------------


def test_a_failing_job_is_recorded_and_logged_and_the_next_one_still_runs(db, caplog):
    ran = []

    def boom(now):
        raise RuntimeError("disk full\nsecond line with row values")

    runner = Runner([job("bad", run=boom), job("good", run=lambda now: ran.append(now) or "fine")])
    with caplog.at_level(logging.INFO, logger="telemetry.scheduler"):
        outcomes = runner.run_due()

    assert [(o.job, o.status) for o in outcomes] == [("bad", "failed"), ("good", "done")]
    assert len(ran) == 1
    bad = row("bad")
    assert bad.last_error == "RuntimeError: disk full"  # first line only
    assert (bad.runs, bad.failures, bad.last_succeeded_at) == (1, 1, None)
    assert bad.lease_until is None
    assert bad.next_due_at == bad.last_finished_at + scheduler.RETRY_AFTER  # sooner than its hour
    good = row("good")
    assert good.last_succeeded_at is not None and good.last_error == ""
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.getMessage() == "job bad failed" and failure.exc_info is not None


def test_a_success_clears_the_last_error(db):
    calls = []

    def flaky(now):
        calls.append(now)
        if len(calls) == 1:
            raise ValueError("once")

    flaky_job = job("flaky", run=flaky, period=timedelta(seconds=1))
    runner = Runner([flaky_job])
    runner.run_due()
    assert row("flaky").last_error == "ValueError: once"
    time.sleep(1.1)
    runner.run_due()

    record = row("flaky")
    assert (record.last_error, record.runs, record.failures) == ("", 2, 1)


def test_a_pass_skips_what_is_not_due_without_running_it(db):
    ran = []
    runner = Runner([job(run=lambda now: ran.append(now))])
    runner.run_due()
    outcomes = runner.run_due()

    assert [(o.status, o.detail) for o in outcomes] == [("skipped", "not due")]
    assert len(ran) == 1


def test_the_job_gets_the_time_of_its_claim(db):
    seen = []
    Runner([job(run=lambda now: seen.append(now))]).run_due()

    assert seen == [row("tick").last_started_at]


def test_a_stop_signal_interrupts_the_running_job_and_makes_it_due_again(db):
    started = threading.Event()

    def long_job(now):
        started.set()
        os.kill(os.getpid(), signal.SIGTERM)  # what gunicorn's on_exit sends
        time.sleep(30)

    runner = Runner([job("long", run=long_job), job("after")])
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    runner.stop_on_signals()
    try:
        began = time.monotonic()
        outcomes = runner.run_due()
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])

    assert time.monotonic() - began < 10
    assert [(o.job, o.status) for o in outcomes] == [("long", "interrupted")]  # "after" not started
    assert runner.stopping.is_set()
    record = row("long")
    assert record.lease_until is None  # released: another runner need not wait for it
    assert record.next_due_at == record.last_finished_at
    assert record.last_error.startswith("Interrupted")


@pytest.mark.postgres
def test_threads_racing_on_postgresql_run_a_job_once(transactional_db):
    """Each thread has its own connection; all claim the same run at the same moment."""
    runs, lock = [], threading.Lock()

    def slow(now):
        with lock:
            runs.append(threading.get_ident())
        time.sleep(0.5)

    racers = 6
    barrier = threading.Barrier(racers)
    outcomes = []
    scheduler.register([job("slow")], now=timezone.now())

    def race():
        try:
            barrier.wait()
            outcomes.extend(Runner([job("slow", run=slow)]).run_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(runs) == 1
    assert sorted(o.status for o in outcomes) == ["done"] + ["skipped"] * (racers - 1)
    assert row("slow").runs == 1


# --- The registered jobs --------------------------------------------------------------------


def test_run_scheduler_once_runs_the_real_jobs_then_nothing_until_they_are_due(app):
    now = timezone.now()
    store_events(app, 3, age=timedelta(days=100), now=now)  # past the 90-day default
    store_events(app, 2, age=timedelta(days=1), now=now)
    UsedNonce.objects.create(app_id=app.pk, nonce="old", expires_at=now - timedelta(hours=1))
    out = StringIO()

    call_command("run_scheduler", "--once", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "partitions: done (0 partitions created, 0 dropped)"
    assert lines[1] == "retention: done (3 events deleted, 1 expired nonces)"
    assert lines[2].startswith("rollups: done (")
    assert lines[3].startswith("properties: done (") and "property summaries built" in lines[3]
    assert lines[4].startswith("fold: done (") and "rollup deltas folded" in lines[4]
    # The jobs alerts adds (scheduler.add_job from AlertsConfig.ready) run after JOBS.
    assert lines[5] == "alerts: done (0 rules evaluated, 0 transitions)"
    assert lines[6] == "deliveries: done (0 notifications delivered, 0 attempts failed)"
    assert lines[7].startswith("digest: done (0 digest notifications stored for the week of ")
    assert lines[8] == "Done: 8 jobs ran."
    assert not RollupDelta.objects.exists()  # the fold moved them into the hourly rollups
    assert HourlyRollup.objects.filter(app=app, dimension="total").aggregate(n=Sum("events"))["n"] == 2
    assert Event.objects.filter(app=app).count() == 2
    assert not UsedNonce.objects.exists()
    app.refresh_from_db()
    assert app.retention_last_run_at == row("retention").last_started_at  # the settings page's "last ran"
    assert {r.name: r.runs for r in ScheduledJob.objects.all()} == {"partitions": 1, "retention": 1, "rollups": 1, "properties": 1, "fold": 1, "alerts": 1, "deliveries": 1, "digest": 1}

    again = StringIO()
    call_command("run_scheduler", "--once", stdout=again)
    assert "retention: skipped (not due)" in again.getvalue()
    assert row("retention").runs == 1


def test_run_scheduler_once_exits_non_zero_when_a_job_failed(db, monkeypatch):
    def broken(now):
        raise RuntimeError("no")

    monkeypatch.setattr(scheduler, "JOBS", [job("broken", run=broken), job("fine")])

    with pytest.raises(CommandError, match="broken failed"):
        call_command("run_scheduler", "--once", stdout=StringIO())
    assert row("fine").last_succeeded_at is not None


def test_the_retention_job_fails_when_an_app_fails_but_prunes_the_others(db):
    from tests.factories import make_app, make_org

    org = make_org(name="Acme")
    first, _ = make_app(org, name="first")
    second, _ = make_app(org, name="second")
    store_events(second, 2, age=timedelta(days=100))
    # A retention reaching before year 1: computing its cutoff raises OverflowError.
    App.objects.filter(pk=first.pk).update(retention_override=True, retention_days=999_999_999)

    with pytest.raises(scheduler.JobFailed, match=first.public_id):
        scheduler.purge_expired(timezone.now())
    assert Event.objects.filter(app=second).count() == 0


def test_periods_can_be_changed_by_setting_and_an_unknown_job_is_refused(settings):
    settings.CLACKS_SCHEDULER_PERIODS = {"rollups": 600}
    assert {j.name: j.period for j in scheduler.jobs()}["rollups"] == timedelta(minutes=10)

    settings.CLACKS_SCHEDULER_PERIODS = {"rollup": 600}
    with pytest.raises(ImproperlyConfigured, match="no job named rollup"):
        scheduler.jobs()


def test_health_still_answers_with_an_unknown_job_in_the_periods(client, db, settings):
    settings.CLACKS_SCHEDULER_PERIODS = {"rollup": 600}  # the scheduler refuses to start; /health says so

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json()["jobs"]["rollups"]["overdue"] is True


def test_built_in_mode_exits_at_once_when_the_scheduler_is_off(db, settings):
    settings.CLACKS_SCHEDULER = False
    call_command("run_scheduler", "--with-server")  # returns instead of looping

    assert not ScheduledJob.objects.exists()


# --- What operators see ------------------------------------------------------------------------


def test_job_states_say_overdue_after_two_periods_without_success(db):
    now = timezone.now()
    [never] = [s for s in scheduler.job_states(now=now) if s.name == "retention"]
    assert never.overdue and never.last_ok is None  # no scheduler ever ran

    retention = next(j for j in scheduler.jobs() if j.name == "retention")
    scheduler.register([retention], now=now)
    scheduler.claim(retention, now=now, owner="a")
    [running] = [s for s in scheduler.job_states(now=now) if s.name == "retention"]
    assert running.running and not running.overdue

    scheduler.finish(retention, owner="a", started=now, finished=now, error=None)
    states = {s.name: s for s in scheduler.job_states(now=now + timedelta(hours=1, minutes=59))}
    assert not states["retention"].overdue and states["retention"].last_ok
    assert states["retention"].every == "1 h"
    states = {s.name: s for s in scheduler.job_states(now=now + timedelta(hours=2, minutes=1))}
    assert states["retention"].overdue


def test_health_reports_each_jobs_last_run_and_stays_200_when_one_is_overdue(client, db):
    Runner([j for j in scheduler.jobs() if j.name == "retention"]).run_due()

    response = client.get("/health")

    assert response.status_code == 200
    jobs = response.json()["jobs"]
    assert list(jobs) == ["partitions", "retention", "rollups", "properties", "fold", "alerts", "deliveries", "digest"]
    assert jobs["fold"]["period_seconds"] == 2
    assert response.json()["rollups"] == {"pending_deltas": 0, "oldest_delta_seconds": 0.0}
    assert jobs["retention"]["last_ok"] is True and jobs["retention"]["overdue"] is False
    assert jobs["retention"]["period_seconds"] == 3600
    succeeded = row("retention").last_succeeded_at
    assert parse_datetime(jobs["retention"]["last_succeeded_at"]) == succeeded.replace(
        microsecond=succeeded.microsecond // 1000 * 1000)  # JSON keeps milliseconds
    assert jobs["partitions"] == {
        "period_seconds": 3600, "last_started_at": None, "last_finished_at": None, "last_succeeded_at": None,
        "last_ok": None, "running": False, "overdue": True,
    }


def test_staff_see_the_background_jobs_page_with_the_last_error(client, db):
    def boom(now):
        raise RuntimeError("cannot reach the disk")

    Runner([job("partitions", run=boom)]).run_due()
    staff = make_user("operator", is_staff=True)
    client.force_login(staff)

    page = client.get("/jobs/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "<code>partitions</code>" in text and "RuntimeError: cannot reach the disk" in text
    assert "last run failed" in text
    assert 'href="/jobs/"' in text  # in the menu


def test_other_users_do_not_see_the_background_jobs_page(client, alice):
    assert client.get("/jobs/").status_code == 302  # sign in first
    client.force_login(alice)
    assert client.get("/jobs/").status_code == 404
    assert 'href="/jobs/"' not in client.get("/orgs/", follow=True).content.decode()


def test_the_fold_runs_in_a_lane_no_other_job_shares(monkeypatch):
    # A slow job of the frequent lane (a webhook call, say) must not delay the fold.
    lanes: dict[str, list[str]] = {}
    for job in scheduler.jobs():
        lanes.setdefault(job.lane_name, []).append(job.name)
    assert lanes["fold"] == ["fold"]
    assert {"alerts", "deliveries"} <= set(lanes["frequent"])
    assert {"partitions", "retention", "rollups", "digest"} <= set(lanes["main"])

    started: list[str] = []
    monkeypatch.setattr(Runner, "_lane", lambda self, jobs: started.append(threading.current_thread().name))
    Runner(scheduler.jobs()).run_forever()
    assert sorted(started) == ["MainThread", "scheduler-fold", "scheduler-frequent"]
