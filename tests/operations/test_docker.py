"""The container: its entrypoint run for real, the compose file and Dockerfile read
against what operators rely on. (No Docker engine on these machines.)"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.operations import servers

DOCKER = servers.REPO / "docker"


# --- docker/entrypoint.sh ------------------------------------------------------------------


def entrypoint(tmp_path: Path, database_url: str, *args: str, **env: str) -> tuple[subprocess.Popen, int, Path]:
    port = servers.free_port()
    log = tmp_path / f"entrypoint-{port}.log"
    child_env = servers.base_env(
        DATABASE_URL=database_url,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        CLACKS_VAR_DIR=str(tmp_path / "var"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / f"prometheus-{port}"),
        **env,
    )
    with log.open("wb") as out:
        process = subprocess.Popen(["sh", str(DOCKER / "entrypoint.sh"), *args], cwd=tmp_path, env=child_env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, port, log


def wait_for(port: int, path: str, status: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        text = log.read_text()
        assert "Connection in use" not in text, f"another process took port {port}"
        if f"Listening at: http://127.0.0.1:{port} " not in text:  # only ask our own gunicorn
            time.sleep(0.2)
            continue
        try:
            if servers.request(port, "GET", path, timeout=5).status == status:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status}:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    finally:
        servers.end_session(process)


@pytest.fixture
def empty_database(tmp_path):
    url = servers.fresh_database_url(tmp_path, "entrypoint")
    yield url
    servers.drop_database(url)


def test_the_entrypoint_migrates_once_then_becomes_gunicorn(tmp_path, empty_database):
    process, port, log = entrypoint(tmp_path, empty_database)
    try:
        wait_for(port, "/ready", 200, process, log)  # ready: no migration pending
        # exec: the process started as the entrypoint is now gunicorn's master, so
        # it receives the container's signals itself.
        assert "gunicorn" in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    finally:
        assert stop(process) == 0
    messages = [line for line in log.read_text().splitlines() if '"logger":"entrypoint"' in line]
    assert [re.search(r'"message":"([^"]+)"', line)[1] for line in messages] == [
        "applying migrations",
        "migrations applied",
        "starting gunicorn",
    ]

    again, port, log = entrypoint(tmp_path, empty_database)  # a restart: nothing left to apply
    try:
        wait_for(port, "/ready", 200, again, log)
    finally:
        assert stop(again) == 0


def test_without_migrate_on_start_it_serves_but_is_not_ready(tmp_path, empty_database):
    process, port, log = entrypoint(tmp_path, empty_database, CLACKS_MIGRATE_ON_START="False")
    try:
        wait_for(port, "/live", 200, process, log)
        ready = servers.request(port, "GET", "/ready")
        assert ready.status == 503
        assert "migrations pending" in ready.json()["reason"]
    finally:
        stop(process)


def test_the_entrypoint_gives_up_on_a_database_that_never_answers(tmp_path):
    if servers.on_postgres():
        unreachable = "postgres://postgres@127.0.0.1:1/clacks"
    else:
        unreachable = f"sqlite:///{tmp_path / 'missing-dir' / 'x.sqlite3'}"
    process, port, log = entrypoint(tmp_path, unreachable, CLACKS_DB_WAIT_SECONDS="1")

    assert process.wait(timeout=120) == 1
    assert '"message":"database unreachable after 1 s"' in log.read_text()


def test_the_entrypoint_prepares_the_state_folder_before_a_command(tmp_path):
    # A fresh volume: no var/ yet and, with DEBUG on and no SECRET_KEY, no key either.
    process, _, log = entrypoint(tmp_path, f"sqlite:///{tmp_path / 'var' / 'db.sqlite3'}", "manage", "check")

    assert process.wait(timeout=120) == 0, log.read_text()
    assert "System check identified no issues" in log.read_text()
    assert (tmp_path / "var" / "secret_key").is_file()


def test_the_scheduler_runs_its_commands_every_interval_and_stops_on_sigterm(tmp_path, served_database):
    process, _, log = entrypoint(tmp_path, served_database, "every", "1", "check", "showmigrations --list telemetry")
    deadline = time.monotonic() + 120
    while log.read_text().count("System check identified no issues") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    started = time.monotonic()
    assert stop(process) == 0
    assert time.monotonic() - started < 5
    output = log.read_text()
    assert output.count("System check identified no issues") >= 2
    assert "[X] 0001_initial" in output


# --- docker/docker-compose.yml -------------------------------------------------------------


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def test_compose_runs_clacks_built_from_the_dockerfile_on_port_8000(compose):
    clacks = compose["services"]["clacks"]

    assert (servers.REPO / clacks["build"]["dockerfile"]).exists()
    assert (DOCKER / clacks["build"]["context"]).resolve() == servers.REPO
    assert clacks["command"] == ["serve"]
    assert clacks["ports"] == ["${CLACKS_PORT:-8000}:8000"]
    assert clacks["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert clacks["environment"]["DATABASE_URL"].startswith("postgres://clacks:")
    assert clacks["environment"]["DATABASE_URL"].endswith("@postgres:5432/clacks")
    assert clacks["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_compose_runs_postgres_16_with_a_pg_isready_healthcheck_and_a_volume(compose):
    postgres = compose["services"]["postgres"]

    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert mount == "/var/lib/postgresql/data" and volume in compose["volumes"]


def test_compose_runs_redis_with_a_healthcheck(compose):
    redis = compose["services"]["redis"]

    assert redis["image"].startswith("redis:7")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_leaves_the_periodic_jobs_to_the_clacks_service(compose):
    # gunicorn runs them (config/gunicorn.py); a second runner would only be idle.
    assert "scheduler" not in compose["services"]
    assert not any("run_scheduler" in str(service.get("command")) for service in compose["services"].values())
    environment = compose["services"]["clacks"]["environment"]
    assert environment.get("CLACKS_SCHEDULER", "on") == "on"


def test_compose_has_prometheus_and_backups_only_on_request(compose):
    prometheus, backup = compose["services"]["prometheus"], compose["services"]["backup"]

    assert prometheus["profiles"] == ["monitoring"]
    assert prometheus["ports"] == ["${PROMETHEUS_PORT:-9090}:9090"]
    for mount in prometheus["volumes"]:
        source = mount.split(":")[0]
        assert source in compose["volumes"] or (DOCKER / source).exists()
    assert backup["profiles"] == ["backup"]
    assert backup["entrypoint"][-1] == "dbbackup"


def test_prometheus_scrapes_clacks_with_the_metrics_token(compose):
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]

    assert job["static_configs"] == [{"targets": ["clacks:8000"]}]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
    assert compose["secrets"]["metrics_token"] == {"environment": "CLACKS_METRICS_TOKEN"}


def test_every_alert_rule_uses_metrics_the_server_exports(client, db):
    exported = client.get("/metrics").content.decode()
    rules = yaml.safe_load((DOCKER / "alerts.yml").read_text())["groups"][0]["rules"]

    used = {name for rule in rules for name in re.findall(r"\b(clacks_[a-z_]+)", rule["expr"])}
    assert used
    for name in used:
        assert f"\n{name}" in exported or f"# TYPE {name.removesuffix('_bucket')} " in exported, name


# --- docker/Dockerfile -----------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_dockerfile_is_multi_stage_slim_non_root_with_a_live_healthcheck():
    instructions = dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    args = dict(arg.split("=", 1) for op, arg in instructions if op == "ARG" and "=" in arg)

    copies = " ".join(arg for op, arg in instructions if op == "COPY")
    assert len(froms) == 3 and froms[0].endswith("AS build") and froms[-1].endswith("AS runtime")
    assert "--from=build" in copies and "--from=static" in copies
    assert "-slim" in args["PYTHON_IMAGE"]
    [user] = [arg for op, arg in instructions if op == "USER"]
    assert user not in ("root", "0")
    [healthcheck] = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    assert "/app/docker/healthcheck.py" in healthcheck  # GET /live on GUNICORN_BIND's port
    assert "/live" in (DOCKER / "healthcheck.py").read_text()
    assert [arg for op, arg in instructions if op == "ENTRYPOINT"] == ['["/app/docker/entrypoint.sh"]']
    [collect] = [arg for op, arg in instructions if op == "RUN" and "collectstatic" in arg]
    assert "SECRET_KEY=" in collect


def test_the_build_time_collectstatic_works_with_debug_off(tmp_path):
    # The Dockerfile's RUN line, here: DEBUG False and a throwaway SECRET_KEY.
    done = servers.manage(
        "collectstatic", "--noinput", "--verbosity", "0",
        env=servers.base_env(DEBUG="False", SECRET_KEY="collectstatic-at-build-time-only-never-used-to-sign-anything",
                             STATIC_ROOT=str(tmp_path / "static"), CLACKS_VAR_DIR=str(tmp_path / "var")),
    )

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()  # the manifest whitenoise serves from


def test_the_image_leaves_out_secrets_and_local_state():
    ignored = (servers.REPO / ".dockerignore").read_text().split()

    for entry in (".git", ".venv", ".env", "var", "staticfiles", "tests"):
        assert entry in ignored
