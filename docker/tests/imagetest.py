"""Run the image built by bin/test-image with podman, on the host's network.

bin/test-image sets CLACKS_PODMAN (podman and its global options: vfs storage,
runc, cgroupfs) and CLACKS_IMAGE; run these tests through it (`make test-image`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field

import pytest

from tests.operations import servers

PODMAN = os.environ.get("CLACKS_PODMAN", "").split()
IMAGE = os.environ.get("CLACKS_IMAGE", "")
# Names this run's containers, so that a fixture can remove what it started even if starting failed.
RUN = uuid.uuid4().hex[:8]
# The ports these tests' containers bind on the host (host networking): a range per
# module, since bin/test-image runs the two modules side by side.
PORTS = {"test_image": iter(range(8681, 8685)), "test_compose": iter(range(8685, 8690))}
SECRET_KEY = "image-test-key-" + "x" * 48
# A Redis database for each module (they run side by side and share nothing), flushed
# by nobody else's tests.
REDIS_URLS = {
    "test_image": os.environ.get("CLACKS_IMAGE_REDIS_URL", "redis://127.0.0.1:6379/11"),
    "test_compose": os.environ.get("CLACKS_IMAGE_COMPOSE_REDIS_URL", "redis://127.0.0.1:6379/12"),
}


def require_podman() -> None:
    if not PODMAN or not IMAGE:
        pytest.fail("run these through bin/test-image (make test-image): CLACKS_PODMAN and CLACKS_IMAGE are unset")


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def base_env(module: str, database_url: str, port: int | None = None, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URLS[module],
        "SECRET_KEY": SECRET_KEY,
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WEB_CONCURRENCY": "2",
        "CLACKS_DB_WAIT_SECONDS": "120",
    }
    if port is not None:
        env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    env.update(extra)
    return env


def env_args(env: dict[str, str]) -> list[str]:
    return [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]


@dataclass
class Container:
    name: str
    port: int | None
    started: list[str] = field(default_factory=list)

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def exec(self, *command: str) -> str:
        return podman("exec", self.name, *command).stdout

    def running(self) -> bool:
        return podman("inspect", self.name, "--format", "{{.State.Running}}", check=False).stdout.strip() == "true"

    def health(self) -> str:
        return podman("inspect", self.name, "--format", "{{.State.Health.Status}}", check=False).stdout.strip()

    def wait_healthy(self, timeout: float = 240) -> float:
        """Run the image's HEALTHCHECK until it passes; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.running(), f"{self.name} stopped:\n{self.logs()}"
            if podman("healthcheck", "run", self.name, check=False).returncode == 0:
                return time.monotonic() - started
            time.sleep(1)
        raise AssertionError(f"{self.name}: HEALTHCHECK never passed in {timeout} s:\n{self.logs()}")

    def stop(self, timeout: int = 40) -> int:
        podman("stop", "--time", str(timeout), self.name, check=False, timeout=timeout + 30)
        return int(podman("inspect", self.name, "--format", "{{.State.ExitCode}}").stdout.strip())

    def remove(self) -> None:
        podman("rm", "--force", "--time", "5", self.name, check=False)


# How Kubernetes runs it (docker/kubernetes/): read-only root, writable emptyDirs at
# /tmp and the state folder, as the image's user.
# The state folder is a new named volume, which takes the image folder's owner as
# Kubernetes gives the emptyDir the pod's fsGroup (podman's tmpfs options take no owner).
READ_ONLY = ["--read-only", "--tmpfs", "/tmp", "--volume", f"clacks-test-{RUN}-readonly:/var/lib/clacks",
             "--user", "10001:10001"]


def run(command: list[str], env: dict[str, str], *, port: int | None = None, volumes: list[str] = (),
        entrypoint: str | None = None, name: str | None = None, label: str = "clacks",
        options: list[str] = ()) -> Container:
    """Start a container of the image in the background."""
    name = name or f"{label}-test-{uuid.uuid4().hex[:8]}"
    args = ["run", "--detach", "--name", name, "--network", "host", *options, *env_args(env)]
    for volume in volumes:
        args += ["--volume", volume]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    podman(*args, IMAGE, *command)
    return Container(name, port)


def run_once(command: list[str], env: dict[str, str], *, volumes: list[str] = (), entrypoint: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """A container that runs one command and is removed."""
    args = ["run", "--rm", "--network", "host", *env_args(env)]
    for volume in volumes:
        args += ["--volume", volume]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    return podman(*args, IMAGE, *command, timeout=timeout, check=False)


def fresh_database(label: str) -> str:
    """An empty PostgreSQL database named after the run's (DATABASE_URL) and the label."""
    server = os.environ["DATABASE_URL"]
    assert server.startswith("postgres"), "the image tests run against PostgreSQL (DATABASE_URL)"
    name = f"{server.rsplit('/', 1)[1]}_{label}"
    return servers.create_postgres_database(server, name)


def messages(logs: str, logger: str) -> list[str]:
    """The messages of one logger in a container's JSON log lines."""
    found = []
    for line in logs.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("logger") == logger:
            found.append(record.get("message", ""))
    return found
