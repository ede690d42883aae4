"""Two instances, one truth: two gunicorn servers on one PostgreSQL (and one Redis)
share nonces, request rates and quotas.

Each server runs in its own processes, so these tests need a database that
outlives any test transaction: a dedicated one is created, migrated in a
subprocess and dropped at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
import redis

from telemetry.auth import sign
from tests.factories import make_batch
from tests.limits.conftest import TWO_INSTANCE_REDIS_DB, delete_keys

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
PORTS = range(8301, 8330)
PRO_RATE = 6  # requests per app per minute on the pro plan, set through its Plan row
FREE_QUOTA = 20  # events per month on the free plan, likewise


# One subprocess for all the apps: Django starts once rather than four times.
CREATE_APPS = """
import json
from organizations.services import create_app, create_organization
orgs = {"rate": create_organization(name="Rate Org", tier="pro"), "quota": create_organization(name="Quota Org", tier="free")}
apps = {}
for org, name in (("rate", "nonce"), ("rate", "steady"), ("rate", "burst"), ("quota", "quota")):
    app, issued = create_app(organization=orgs[org], name=name)
    apps[name] = {"org_id": orgs[org].public_id, "app_id": app.public_id, "secret": issued.secret}
print(json.dumps(apps))
"""


@dataclass
class Credentials:
    org_id: str
    app_id: str
    secret: str

    @property
    def path(self) -> str:
        return f"/v1/ingest/{self.org_id}/{self.app_id}"


@dataclass
class Cluster:
    ports: tuple[int, int]
    database_url: str
    apps: dict[str, Credentials]
    store: str
    key_prefix: str

    def query(self, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()


def _free_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 8301-8329")


def _database_urls() -> tuple[str, str]:
    """(maintenance database URL, URL of a new database of our own) on the test's server."""
    base = urlsplit(os.environ["DATABASE_URL"])
    name = f"clacks_twoinst_{uuid.uuid4().hex[:10]}"
    return urlunsplit(base._replace(path="/postgres")), urlunsplit(base._replace(path=f"/{name}"))


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _wait_until_live(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on {port} exited:\n{log.read_text()[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/live")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # gunicorn's master and its workers
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module", params=["redis", "database"])
def cluster(request, tmp_path_factory):
    """Two servers, each gunicorn with two workers, on one new database; with REDIS_URL
    set to a Redis database of their own, or without it (database counters and nonces)."""
    store = request.param
    maintenance_url, database_url = _database_urls()
    name = urlsplit(database_url).path.lstrip("/")
    redis_url = f"redis://127.0.0.1:6379/{TWO_INSTANCE_REDIS_DB}"
    key_prefix = f"twoinst-{uuid.uuid4().hex[:12]}:clacks"  # apart from other runs sharing the database
    var = tmp_path_factory.mktemp(f"twoinst-{store}")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url if store == "redis" else "",
        "CLACKS_REDIS_KEY_PREFIX": key_prefix,
        "DEBUG": "False",
        "SECRET_KEY": "two-instances-" + uuid.uuid4().hex,
        "CLACKS_MANIFEST_STATIC": "False",
        "CLACKS_VAR_DIR": str(var),
        "CONN_MAX_AGE": "60",
        "WEB_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
    }
    with psycopg.connect(maintenance_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    processes: list[subprocess.Popen] = []
    try:
        _manage(env, "migrate", "--noinput")
        issued = json.loads(_manage(env, "shell", "--no-imports", "-c", CREATE_APPS))
        apps = {name: Credentials(**values) for name, values in issued.items()}
        # Plans edited as an operator would in the admin: rows both servers read.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE telemetry_plan SET requests_per_minute = %s, monthly_events = 0 WHERE tier = 'pro'",
                [PRO_RATE],
            )
            conn.execute(
                "UPDATE telemetry_plan SET requests_per_minute = 1000, monthly_events = %s WHERE tier = 'free'",
                [FREE_QUOTA],
            )
        taken: set[int] = set()
        ports = (_free_port(taken), _free_port(taken))
        for port in ports:
            log = var / f"server-{port}.log"
            processes.append(
                subprocess.Popen(
                    [str(Path(sys.executable).with_name("gunicorn")), "--config", "config/gunicorn.py",
                     "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", "config.wsgi"],
                    cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
            _wait_until_live(port, processes[-1], log)
        yield Cluster(ports=ports, database_url=database_url, apps=apps, store=store, key_prefix=key_prefix)
    finally:
        for process in processes:
            _stop(process)
        with psycopg.connect(maintenance_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        delete_keys(redis.Redis.from_url(redis_url), key_prefix)


def signed(creds: Credentials, body: bytes, *, nonce: str | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()))
    nonce = nonce or str(uuid.uuid4())
    return {
        "Content-Type": "application/json",
        "X-Timestamp": timestamp,
        "X-Nonce": nonce,
        "X-Signature": sign(creds.secret, timestamp, body, nonce),
        "X-SDK-Version": "telemetry-kit-rust/0.3.0",
    }


def post(port: int, creds: Credentials, body: bytes, headers: dict[str, str]) -> tuple[int, dict, dict]:
    """(status, lower-cased headers, JSON body) of one POST to a server on loopback."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", creds.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, orjson.loads(payload or b"null")
    finally:
        connection.close()


def send(port: int, creds: Credentials, events: int = 1) -> tuple[int, dict, dict]:
    body = orjson.dumps(make_batch(events))
    return post(port, creds, body, signed(creds, body))


def test_a_nonce_used_on_one_server_is_refused_on_the_other(cluster):
    a, b = cluster.ports
    creds = cluster.apps["nonce"]
    body = orjson.dumps(make_batch(1))
    headers = signed(creds, body)

    first = post(a, creds, body, headers)
    replay = post(b, creds, body, headers)  # the same bytes and headers, captured and sent elsewhere

    assert first[0] == 200
    assert replay[0] == 409
    assert replay[2]["error"]["code"] == "nonce_reused"
    assert cluster.query("SELECT count(*) FROM telemetry_event")[0][0] >= 1


def test_the_rate_limit_is_shared_by_both_servers(cluster, steady_minute):
    a, b = cluster.ports
    creds = cluster.apps["steady"]

    answers = [send(port, creds) for port in (a, b, a, b, a, b, a, b)]

    statuses = [status for status, _, _ in answers]
    remaining = [headers["x-ratelimit-remaining"] for _, headers, _ in answers]
    assert statuses == [200] * PRO_RATE + [429, 429]
    assert remaining == ["5", "4", "3", "2", "1", "0", "0", "0"]
    refused = answers[-1]
    assert refused[2]["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= refused[2]["retry_after"] <= 60
    assert refused[1]["retry-after"] == str(refused[2]["retry_after"])
    assert {headers["x-ratelimit-limit"] for _, headers, _ in answers} == {str(PRO_RATE)}


def test_simultaneous_requests_to_both_servers_get_exactly_the_rate(cluster, steady_minute):
    a, b = cluster.ports
    creds = cluster.apps["burst"]
    bodies = [orjson.dumps(make_batch(2)) for _ in range(24)]
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = []

    def fire(index: int) -> None:
        body = bodies[index]
        headers = signed(creds, body)
        barrier.wait()
        answers.append(post(a if index % 2 else b, creds, body, headers)[0])

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(answers) == [200] * PRO_RATE + [429] * (len(bodies) - PRO_RATE)
    stored = cluster.query(
        "SELECT count(*) FROM telemetry_event e JOIN organizations_app a ON a.id = e.app_id WHERE a.public_id = %s",
        [creds.app_id],
    )[0][0]
    assert stored == 2 * PRO_RATE


def test_the_monthly_quota_is_shared_by_both_servers(cluster):
    a, b = cluster.ports
    creds = cluster.apps["quota"]

    first = send(a, creds, events=12)
    crossing = send(b, creds, events=10)  # 12 < 20 when it arrives: stored whole
    refused_b = send(b, creds)
    refused_a = send(a, creds)

    assert (first[0], crossing[0]) == (200, 200)
    assert (refused_a[0], refused_b[0]) == (429, 429)
    assert refused_a[2]["error"]["code"] == refused_b[2]["error"]["code"] == "quota_exceeded"
    assert refused_a[2]["retry_after"] > 0
    assert "x-ratelimit-remaining" in refused_a[1]
    stored = cluster.query(
        "SELECT count(*) FROM telemetry_event e JOIN organizations_app a ON a.id = e.app_id WHERE a.public_id = %s",
        [creds.app_id],
    )[0][0]
    assert stored == 22


def test_the_counters_live_where_the_configuration_says(cluster):
    client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{TWO_INSTANCE_REDIS_DB}")
    keys = [key.decode() for key in client.scan_iter(match=f"{cluster.key_prefix}:*")]
    rate_rows = cluster.query("SELECT count(*) FROM telemetry_requestcounter")[0][0]
    usage_rows = cluster.query("SELECT coalesce(sum(events), 0) FROM telemetry_monthlyusage")[0][0]
    nonce_rows = cluster.query("SELECT count(*) FROM telemetry_usednonce")[0][0]

    if cluster.store == "redis":
        assert any(key.startswith(f"{cluster.key_prefix}:rate:") for key in keys)
        assert any(key.startswith(f"{cluster.key_prefix}:events:") for key in keys)
        assert (rate_rows, usage_rows, nonce_rows) == (0, 0, 0)  # nonces went to Redis too
    else:
        assert keys == []
        assert rate_rows >= 3 and usage_rows == 22 and nonce_rows > 0
