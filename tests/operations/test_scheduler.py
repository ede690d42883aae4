"""The background jobs as they really run: runners in separate processes racing for one
database, gunicorn starting and stopping its scheduler, and a database outage."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.operations import servers


def job_rows(database_url: str) -> dict[str, dict]:
    """{job name: its telemetry_scheduledjob row}, read straight from the database."""
    query = "SELECT name, runs, failures, last_started_at, last_succeeded_at, lease_until FROM telemetry_scheduledjob"
    columns = ["name", "runs", "failures", "last_started_at", "last_succeeded_at", "lease_until"]
    if database_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(database_url) as conn:
            rows = conn.execute(query).fetchall()
    else:
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(query).fetchall()
    return {row[0]: dict(zip(columns, row)) for row in rows}


def children(pid: int, needle: str) -> list[int]:
    """Live processes whose parent is pid and whose command line contains needle."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and needle in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s" + (f":\n{log.read_text()}" if log else ""))


@pytest.fixture(scope="module")
def fresh_database(tmp_path_factory):
    """A migrated database no scheduler has touched (the racing tests use different jobs)."""
    url = servers.fresh_database_url(tmp_path_factory.mktemp("scheduler"), "scheduler")
    servers.manage("migrate", "--noinput", env=prepared_env(DATABASE_URL=url))
    yield url
    servers.drop_database(url)


def python(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([str(servers.BIN / "python"), *args], cwd=servers.REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def prepared_env(**overrides: str) -> dict[str, str]:
    """A child's environment whose CLACKS_VAR_DIR has been prepared as `make serve` does."""
    env = servers.base_env(**overrides)
    servers.prepare(env)
    return env


# --- Runners racing ------------------------------------------------------------------------


def test_two_run_scheduler_once_started_together_run_each_job_once(tmp_path, fresh_database):
    env = prepared_env(DATABASE_URL=fresh_database, CLACKS_VAR_DIR=str(tmp_path / "var"))
    logs = [tmp_path / "once-1.log", tmp_path / "once-2.log"]
    processes = [python("manage.py", "run_scheduler", "--once", env=env, log=log) for log in logs]
    for process in processes:
        assert process.wait(timeout=120) == 0

    output = "".join(log.read_text() for log in logs)
    names = ("partitions", "retention", "rollups", "properties", "fold", "alerts", "deliveries", "digest")
    for name in names:
        assert output.count(f"{name}: done") == 1, output
    assert {name: row["runs"] for name, row in job_rows(fresh_database).items()} == dict.fromkeys(names, 1)


# Each process registers one slow job, says it is ready, waits for "go", then claims.
RACER = """
import os, sys, time
from datetime import timedelta
from pathlib import Path
import django
django.setup()
from telemetry.scheduler import Job, Runner
here = Path(sys.argv[1])

def slow(now):
    with open(here / "ran", "a") as ran:
        ran.write(f"{os.getpid()}\\n")
    time.sleep(1)

runner = Runner([Job("slow", timedelta(hours=1), slow, lease=timedelta(minutes=1))])
(here / f"ready-{os.getpid()}").touch()
while not (here / "go").exists():
    time.sleep(0.005)
print(runner.run_due()[0].status)
"""


def test_processes_racing_for_a_slow_job_run_it_once(tmp_path, fresh_database):
    env = prepared_env(DATABASE_URL=fresh_database, CLACKS_VAR_DIR=str(tmp_path / "var"),
                           DJANGO_SETTINGS_MODULE="config.settings")
    racers = [python("-c", RACER, str(tmp_path), env=env, log=tmp_path / f"racer-{n}.log") for n in range(3)]
    wait_until(lambda: len(list(tmp_path.glob("ready-*"))) == 3, 120, "three racers ready")
    (tmp_path / "go").touch()
    for racer in racers:
        assert racer.wait(timeout=60) == 0

    statuses = sorted((tmp_path / f"racer-{n}.log").read_text().split()[-1] for n in range(3))
    assert statuses == ["done", "skipped", "skipped"]
    assert len((tmp_path / "ran").read_text().split()) == 1
    assert job_rows(fresh_database)["slow"]["runs"] == 1


# A job every second beside an hourly job that takes 4 s: the frequent one must not wait.
LANES = """
import sys, threading, time
from datetime import timedelta
from pathlib import Path
import django
django.setup()
from telemetry.scheduler import Job, Runner
here = Path(sys.argv[1])

def long(now):
    (here / "long-start").write_text(str(time.time()))
    time.sleep(4)
    (here / "long-end").write_text(str(time.time()))

def quick(now):
    with open(here / "quick", "a") as runs:
        runs.write(f"{time.time()}\\n")

runner = Runner([
    Job("long", timedelta(hours=1), long, lease=timedelta(minutes=1)),
    Job("quick", timedelta(seconds=1), quick, lease=timedelta(seconds=30)),
])
threading.Timer(8, runner.stopping.set).start()
runner.run_forever()
"""


def test_a_frequent_job_keeps_running_while_an_hourly_one_takes_its_time(tmp_path, fresh_database):
    env = prepared_env(DATABASE_URL=fresh_database, CLACKS_VAR_DIR=str(tmp_path / "var"),
                           DJANGO_SETTINGS_MODULE="config.settings")
    process = python("-c", LANES, str(tmp_path), env=env, log=tmp_path / "lanes.log")
    assert process.wait(timeout=120) == 0, (tmp_path / "lanes.log").read_text()

    began, ended = float((tmp_path / "long-start").read_text()), float((tmp_path / "long-end").read_text())
    quick_runs = [float(line) for line in (tmp_path / "quick").read_text().split()]
    assert sum(began < moment < ended for moment in quick_runs) >= 3, (began, ended, quick_runs)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CLACKS_SCHEDULER", "maybe", "use on or off"),
        ("CLACKS_SCHEDULER_PERIODS", "rollups=soon", "use job=seconds"),
        ("CLACKS_SCHEDULER_PERIODS", "rollups=0", "use job=seconds"),
    ],
)
def test_a_bad_scheduler_setting_stops_startup_with_its_name(tmp_path, name, value, message):
    env = prepared_env(CLACKS_VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                           **{name: value})
    done = servers.manage("check", env=env, check=False)

    assert done.returncode != 0
    assert name in done.stderr and message in done.stderr


# --- Inside gunicorn ------------------------------------------------------------------------


def health_jobs(server: servers.Server) -> dict:
    answer = servers.request(server.port, "GET", "/health")
    assert answer.status == 200, answer.body
    return answer.json()["jobs"]


def test_gunicorn_runs_the_jobs_by_itself_and_stops_its_scheduler_when_it_stops(gunicorn):
    started = datetime.now().astimezone()
    server = gunicorn(workers=2, CLACKS_SCHEDULER="on", CLACKS_SCHEDULER_PERIODS="partitions=1")

    def partitions_succeeded_since(moment):
        jobs = health_jobs(server)
        last = jobs["partitions"]["last_succeeded_at"]
        return last and datetime.fromisoformat(last.replace("Z", "+00:00")) > moment and jobs["partitions"]

    first = wait_until(lambda: partitions_succeeded_since(started), 90, "a run shown in /health", server.log_path)
    assert first["last_ok"] is True and first["overdue"] is False
    first_run = datetime.fromisoformat(first["last_succeeded_at"].replace("Z", "+00:00"))
    wait_until(lambda: partitions_succeeded_since(first_run), 30, "a second run a period later", server.log_path)

    [scheduler] = children(server.process.pid, "run_scheduler")  # one for the server, not one per worker
    assert len(children(server.process.pid, "gunicorn")) == 2

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0
    # on_exit has waited for it: gone before the master is, not orphaned.
    assert not alive(scheduler)
    servers.end_session(server.process)
    assert '"message":"scheduler stopped"' in server.log_path.read_text()


def test_the_scheduler_leaves_when_its_gunicorn_is_killed(gunicorn):
    server = gunicorn(workers=1, CLACKS_SCHEDULER="on")
    [scheduler] = wait_until(lambda: children(server.process.pid, "run_scheduler"), 30, "the scheduler started")
    wait_until(lambda: '"message":"scheduler started' in server.log_path.read_text(), 90, "the scheduler's loop",
               server.log_path)

    os.kill(server.process.pid, signal.SIGKILL)  # no on_exit
    server.process.wait(timeout=10)
    wait_until(lambda: not alive(scheduler), 15, "the orphaned scheduler to stop", server.log_path)
    assert "the server that started it is gone" in server.log_path.read_text()


def test_with_the_scheduler_off_the_server_runs_no_jobs_and_says_so(gunicorn):
    server = gunicorn(workers=1, CLACKS_SCHEDULER="off")

    wait_until(lambda: "built-in scheduler off" in server.log_path.read_text(), 60, "the scheduler to bow out",
               server.log_path)
    wait_until(lambda: not children(server.process.pid, "run_scheduler"), 10, "no scheduler process")
    assert all(job["overdue"] or job["last_succeeded_at"] for job in health_jobs(server).values())


# --- A database outage ---------------------------------------------------------------------------


@pytest.fixture
def private_postgres():
    cluster = servers.private_postgres()
    yield cluster
    cluster.destroy()


@pytest.mark.postgres
def test_the_scheduler_outlives_a_database_outage_and_carries_on(on_postgres, tmp_path, private_postgres):
    database_url = servers.create_postgres_database(private_postgres.url(), "clacks")
    env = prepared_env(DATABASE_URL=database_url, CLACKS_VAR_DIR=str(tmp_path / "var"),
                           CLACKS_DB_CONNECT_TIMEOUT="2", CLACKS_SCHEDULER_PERIODS="partitions=1")
    servers.manage("migrate", "--noinput", env=env)
    log = tmp_path / "scheduler.log"
    process = python("manage.py", "run_scheduler", env=env, log=log)
    try:
        wait_until(lambda: job_rows(database_url).get("partitions", {}).get("runs", 0) >= 1, 90, "a first run", log)

        private_postgres.stop()
        wait_until(lambda: "database error" in log.read_text(), 30, "the outage noticed", log)
        time.sleep(3)  # a few failed tries
        assert process.poll() is None, log.read_text()
        private_postgres.start()

        before = job_rows(database_url)["partitions"]["runs"]
        wait_until(lambda: job_rows(database_url)["partitions"]["runs"] > before, 90, "runs again after the outage",
                   log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        servers.end_session(process)
