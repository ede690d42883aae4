"""The image, built by bin/test-image, run for real against the machine's PostgreSQL.

Two containers start at the same moment on an empty database: both become
healthy, the migrations are applied once, then one ingests a signed batch,
archives it to Parquet and serves its static files as a non-root user.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import orjson
import psycopg
import pytest

import imagetest as podman
from tests.factories import make_batch
from tests.operations import servers


@pytest.fixture(scope="module")
def database():
    podman.require_podman()
    url = podman.fresh_database("image")
    yield url
    servers.drop_postgres_database(url)


@pytest.fixture(scope="module")
def pair(database):
    """Two containers of the image, started together on one empty database, both healthy;
    the second with a read-only root filesystem, as Kubernetes runs it."""
    ports = [next(podman.PORTS["test_image"]), next(podman.PORTS["test_image"])]
    names = [f"clacks-test-{port}-{podman.RUN}" for port in ports]
    try:
        with ThreadPoolExecutor(2) as pool:
            containers = list(pool.map(
                lambda port, name, options: podman.run(
                    ["serve"], podman.base_env("test_image", database, port), port=port, options=options, name=name),
                ports, names, [[], podman.READ_ONLY],
            ))
        with ThreadPoolExecutor(2) as pool:
            waited = list(pool.map(lambda container: container.wait_healthy(), containers))
        print(f"healthy after {waited[0]:.0f} s and {waited[1]:.0f} s")
        yield containers
    finally:
        for name in names:
            podman.Container(name, None).remove()
        podman.podman("volume", "rm", "--force", f"clacks-test-{podman.RUN}-readonly", check=False)


def test_both_containers_pass_their_healthcheck_and_are_ready(pair):
    for container in pair:
        assert container.health() == "healthy"
        ready = servers.request(container.port, "GET", "/ready")
        assert ready.status == 200, ready.body  # and so no migration is pending


def test_the_migrations_ran_once_though_both_containers_started_together(pair, database):
    logs = [podman.messages(container.logs(), "clacks.migrate") for container in pair]
    applied = [message for messages in logs for message in messages if message.startswith("applied ")]
    skipped = [message for messages in logs for message in messages if message.startswith("no migrations to apply")]
    assert len(applied) == 1 and len(skipped) == 1, logs
    # The second one waited for the first's lock rather than racing it.
    assert any("waiting for the migration lock" in message for messages in logs for message in messages), logs
    count = int(re.match(r"applied (\d+) migrations", applied[0])[1])
    with psycopg.connect(database) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations").fetchone()
    assert rows == distinct == count
    for container in pair:
        assert podman.messages(container.logs(), "entrypoint") == [
            "applying migrations", "migrations applied", "starting gunicorn",
        ]


def test_it_runs_as_an_unprivileged_user(pair):
    container = pair[0]
    assert podman.podman("image", "inspect", podman.IMAGE, "--format", "{{.Config.User}}").stdout.strip() == "clacks"
    # PID 1 is gunicorn's master (the entrypoint exec'd it); its workers are its children.
    status = container.exec("cat", "/proc/1/status", "/proc/1/cmdline")
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.M), status
    assert "gunicorn" in status
    assert container.exec("id", "-u").strip() == "10001"
    # The code is not writable by that user; its state folder is.
    assert podman.podman("exec", container.name, "touch", "/app/manage.py", check=False).returncode != 0
    container.exec("touch", "/var/lib/clacks/written")


def test_static_files_are_served_from_the_collected_manifest(pair):
    port = pair[0].port
    page = servers.request(port, "GET", "/accounts/login/")
    if page.status == 302:  # a new installation sends everyone to its first-run page
        page = servers.request(port, "GET", page.headers["location"])
    assert page.status == 200, page.status
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page.body.decode())
    assert stylesheets, page.body[:500]
    # Hashed names (ManifestStaticFilesStorage), served by whitenoise with a far expiry.
    assert re.search(r"\.[0-9a-f]{12}\.css$", stylesheets[0]), stylesheets
    css = servers.request(port, "GET", stylesheets[0])
    assert css.status == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers.get("cache-control", "")


def test_the_read_only_container_serves_and_writes_only_its_scratch_folders(pair):
    container = pair[1]
    assert podman.podman("inspect", container.name, "--format", "{{.HostConfig.ReadonlyRootfs}}").stdout.strip() == "true"
    assert podman.podman("exec", container.name, "touch", "/app/x", check=False).returncode != 0
    assert podman.podman("exec", container.name, "touch", "/opt/venv/x", check=False).returncode != 0
    # gunicorn's metrics files, in the writable state folder.
    assert container.exec("ls", "/var/lib/clacks/prometheus").split()
    metrics = servers.request(container.port, "GET", "/metrics")  # open: no CLACKS_METRICS_TOKEN here
    assert metrics.status == 200 and b"django_http_requests" in metrics.body


def issued_app(stdout: str) -> dict:
    """create_app --json's object, among the JSON log lines the container also printed."""
    starts = [index for index, char in enumerate(stdout) if char == "{" and (index == 0 or stdout[index - 1] == "\n")]
    for start in starts:
        try:
            data = json.JSONDecoder().raw_decode(stdout[start:])[0]
        except ValueError:
            continue
        if isinstance(data, dict) and "secret" in data:
            return data
    raise AssertionError(f"no app in the output:\n{stdout}")


@pytest.fixture(scope="module")
def stored(pair, database):
    """An app made with `manage create_app` in a container of its own, and the answer to
    a signed batch of 3 events sent to the first container."""
    made = podman.run_once(["manage", "create_app", "--org", "Image", "--app", "image-cli", "--json"],
                           podman.base_env("test_image", database))
    assert made.returncode == 0, made.stderr
    data = issued_app(made.stdout)
    app = servers.IssuedApp(data["org_id"], data["app_id"], data["secret"], data["token"])
    return app, servers.signed_post(pair[0].port, app, orjson.dumps(make_batch(3)))


def test_a_signed_batch_is_stored(pair, database, stored):
    app, answer = stored
    assert answer.status == 200, answer.body
    assert answer.json()["accepted"] == 3
    assert servers.count_events(database, app.app_id) == (3, 3)
    # The other instance refuses the same request again: nonces are shared (Redis).
    replay = servers.signed_post(pair[1].port, app, orjson.dumps(make_batch(1)), nonce=f"image-test-{podman.RUN}")
    again = servers.signed_post(pair[0].port, app, orjson.dumps(make_batch(1)), nonce=f"image-test-{podman.RUN}")
    assert replay.status == 200 and again.status == 409, (replay.body, again.body)


# The archive's own code (telemetry/archive.py) on the image's trimmed pyarrow
# (docker/Dockerfile): each day of the app's events written to Parquet in a scratch
# folder, read back and checked (SHA-256, row count), nothing deleted.
ARCHIVE = """
import tempfile
from datetime import timedelta
from pathlib import Path
from django.utils import timezone
from organizations.models import App
from telemetry import archive
from telemetry.models import Event
app = App.objects.get(public_id=APP_ID)
rows = 0
with tempfile.TemporaryDirectory() as folder:
    for day in sorted({stamp.date() for stamp in Event.objects.filter(app=app).values_list("timestamp", flat=True)}):
        rows += archive.archive_day(app, day, store=archive.DirectoryStore(Path(folder) / "store"),
                                    before=timezone.now() + timedelta(minutes=1), workdir=Path(folder)).rows
print(f"archived {rows} events")
"""


def test_the_archive_writes_the_stored_events_to_parquet_in_the_image(pair, database, stored):
    app, answer = stored
    assert answer.status == 200, answer.body
    count, _ = servers.count_events(database, app.app_id)
    printed = pair[0].exec("python", "manage.py", "shell", "-c", f"APP_ID = {app.app_id!r}\n{ARCHIVE}")
    assert f"archived {count} events" in printed, printed
    assert servers.count_events(database, app.app_id)[0] == count  # archived, nothing deleted


def test_a_container_stops_cleanly_on_sigterm(pair):
    # Last: stops the first container. gunicorn finishes and exits 0 well within the grace period.
    assert pair[0].stop(timeout=40) == 0, pair[0].logs()[-2000:]
