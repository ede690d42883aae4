"""docker/docker-compose.yml checked against the image, one service at a time.

No registry is reachable here, so the `postgres` and `redis` images cannot be
pulled: each service built from the Clacks image runs its own command,
entrypoint, environment and volumes as a container of the image built by
bin/test-image, against the machine's PostgreSQL and Redis in their place
(DATABASE_URL and REDIS_URL are the two values rewritten), and the
PostgreSQL service's healthcheck command runs inside the image against the
machine's server. Prometheus (an image of its own) is not run.
"""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest
import yaml

import imagetest as podman
from tests.operations import servers

COMPOSE = yaml.safe_load((servers.REPO / "docker" / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
CLACKS_IMAGE = SERVICES["clacks"]["image"]


def clacks_services() -> list[str]:
    return [name for name, service in SERVICES.items() if service.get("image") == CLACKS_IMAGE]


def service_env(name: str, database: str, port: int | None = None) -> dict[str, str]:
    """The service's environment, with the machine's PostgreSQL and Redis for the compose ones."""
    env = {key: str(value) for key, value in (SERVICES[name].get("environment") or {}).items()}
    assert env.pop("DATABASE_URL").endswith("@postgres:5432/clacks")
    assert env.pop("REDIS_URL") == "redis://redis:6379/0"
    return {**podman.base_env("test_compose", database, port), **env}


def volumes(name: str, run: str) -> list[str]:
    """The service's named volumes, as podman volumes of this run (removed after)."""
    mounts = []
    for mount in SERVICES[name].get("volumes", []):
        source, target = mount.split(":")[:2]
        assert source in COMPOSE["volumes"], f"{name}: {source} is not a named volume"
        mounts.append(f"clacks-test-{run}-{source}:{target}")
    return mounts


@pytest.fixture(scope="module")
def database():
    podman.require_podman()
    url = podman.fresh_database("compose")
    yield url
    servers.drop_postgres_database(url)


@pytest.fixture(scope="module")
def run_id():
    run = uuid.uuid4().hex[:8]
    yield run
    for volume in podman.podman("volume", "ls", "--format", "{{.Name}}").stdout.split():
        if volume.startswith(f"clacks-test-{run}-"):
            podman.podman("volume", "rm", "--force", volume, check=False)


def test_every_clacks_service_is_one_the_test_runs():
    # A new service built from the image needs a test here.
    assert set(clacks_services()) == {"clacks", "backup"}


def test_the_postgres_healthcheck_command_answers(database):
    test = SERVICES["postgres"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    # The same command, run in the image (which has pg_isready) against the machine's server.
    done = podman.run_once(["sh", "-c", test[1]], {"PGHOST": "127.0.0.1"}, entrypoint="")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accepting connections" in done.stdout


@pytest.fixture(scope="module")
def clacks(database, run_id):
    """The clacks service: its command, environment and volume, with the image's HEALTHCHECK."""
    service = SERVICES["clacks"]
    port = next(podman.PORTS["test_compose"])
    container = podman.run(service["command"], service_env("clacks", database, port), port=port,
                           volumes=volumes("clacks", run_id), label="compose-clacks")
    try:
        container.wait_healthy()
        yield container
    finally:
        container.remove()


def test_the_clacks_service_becomes_healthy_and_ready(clacks):
    assert clacks.health() == "healthy"
    assert servers.request(clacks.port, "GET", "/ready").status == 200
    # The port it publishes is the one the image serves on.
    assert SERVICES["clacks"]["ports"][0].endswith(":8000")
    assert podman.podman("image", "inspect", podman.IMAGE, "--format", "{{json .Config.ExposedPorts}}").stdout.count("8000")


def test_the_clacks_service_runs_the_scheduler_which_runs_every_job(clacks, database):
    # gunicorn's master starts `manage.py run_scheduler`; each job's first run is due at once.
    deadline = time.monotonic() + 180
    while True:
        health = servers.request(clacks.port, "GET", "/health").json()
        jobs = health["jobs"]
        if all(job.get("last_succeeded_at") for job in jobs.values()) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert "run_scheduler" in clacks.exec("cat", *[f"/proc/{pid}/cmdline" for pid in _children(clacks)])
    assert {"partitions", "retention", "rollups", "fold"} <= set(jobs)
    assert all(job.get("last_succeeded_at") for job in jobs.values()), json.dumps(jobs, indent=1)
    with psycopg.connect(database) as conn:
        partitions = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry_event'::regclass").fetchone()[0]
    assert partitions >= 4  # this month's and the next three


def _children(container) -> list[str]:
    listing = container.exec("sh", "-c", "grep -l '^PPid:\\s*1$' /proc/[0-9]*/status")
    return [line.split("/")[2] for line in listing.split()]


def test_the_clacks_service_keeps_its_state_in_its_volume(clacks):
    # The named volume is mounted where CLACKS_VAR_DIR points, writable by the unprivileged user
    # (a new volume takes the image folder's owner).
    [mount] = SERVICES["clacks"]["volumes"]
    target = mount.split(":")[1]
    assert target == "/var/lib/clacks"
    listing = clacks.exec("stat", "-c", "%u %n", target, f"{target}/prometheus")
    assert listing.split() == ["10001", target, "10001", f"{target}/prometheus"]


def test_the_backup_service_writes_a_dump_to_its_volume_and_checks_it(clacks, database, run_id):
    service = SERVICES["backup"]
    env = service_env("backup", database)
    entrypoint = service["entrypoint"]
    mounts = volumes("backup", run_id)

    backup = podman.run_once([*entrypoint[1:], *service["command"]], env, volumes=mounts, entrypoint=entrypoint[0])
    assert backup.returncode == 0, backup.stdout + backup.stderr
    check = podman.run_once([*entrypoint[1:], "check"], env, volumes=mounts, entrypoint=entrypoint[0])
    assert check.returncode == 0, check.stdout + check.stderr
    listing = podman.run_once(["ls", env["CLACKS_BACKUP_DIR"]], env, volumes=mounts, entrypoint="")
    assert ".dump" in listing.stdout, listing.stdout


def test_the_scheduler_runs_as_a_container_of_its_own_and_stops_on_sigterm(clacks, database):
    # Last in this module. The clacks service first stops as `docker compose down` stops it
    # (gunicorn finishes its requests and its scheduler), well within its stop_grace_period.
    grace = int(SERVICES["clacks"]["stop_grace_period"].removesuffix("s"))
    assert clacks.stop(timeout=grace) == 0, clacks.logs()[-2000:]
    # The Kubernetes scheduler Deployment's command (docker/kubernetes/): `manage run_scheduler`
    # with the web containers' CLACKS_SCHEDULER=off, the one runner.
    container = podman.run(["manage", "run_scheduler"], service_env("clacks", database), label="scheduler")
    try:
        deadline = time.monotonic() + 120
        while "scheduler started" not in container.logs() and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(5)  # a round of its jobs
        assert container.running(), container.logs()
        started = time.monotonic()
        assert container.stop(timeout=40) == 0, container.logs()[-2000:]
        assert time.monotonic() - started < 30
    finally:
        container.remove()
