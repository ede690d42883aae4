"""Real servers for operations tests: databases made for them, gunicorn in a subprocess,
and a signing HTTP client that talks to 127.0.0.1 only."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psycopg
from psycopg import sql

from telemetry.auth import sign
from tests.pgcluster import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The ports these tests may listen on (servers and a private PostgreSQL).
PORTS = range(8201, 8230)


def free_port() -> int:
    """A port of PORTS nothing is bound to now. Tried in random order: other runs of
    these tests may be picking ports at the same moment (callers still check that
    their server got the port; see start_gunicorn)."""
    import random

    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def on_postgres() -> bool:
    return os.getenv("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def base_env(**overrides: str) -> dict[str, str]:
    """The environment of a child process: this one's, minus what the test run set for
    itself, plus the overrides."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "PROMETHEUS"))}
    env.pop("REDIS_URL", None)
    # Servers started here run no background jobs unless a test asks for them
    # (CLACKS_SCHEDULER="on"): jobs on the shared database would run beside every test.
    env["CLACKS_SCHEDULER"] = "off"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    if "EVENTS_DATABASE_URL" in os.environ:
        # A run with events on a database of their own (tests/topology.py): a child
        # given a database gets that database's events beside it (fresh_database_url).
        if not env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            env.pop("EVENTS_DATABASE_URL", None)
        elif "EVENTS_DATABASE_URL" not in overrides:
            env["EVENTS_DATABASE_URL"] = events_url(env["DATABASE_URL"])
    return env


def events_url(database_url: str) -> str:
    """Where a database's events go in a run with EVENTS_DATABASE_URL (tests/topology.py)."""
    return f"{database_url}_events"


def prepare(env: dict[str, str]) -> None:
    """bin/prepare in this environment: var/ and the development key, as `make serve` makes them."""
    subprocess.run(
        [str(BIN / "python"), "bin/prepare"], cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=60
    )


def manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    # A command is not a gunicorn worker: it must not add its counts to a server's /metrics.
    env = {key: value for key, value in env.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=check,
        timeout=300,
    )


# --- Databases ------------------------------------------------------------------------


def admin_url(database_url: str, dbname: str = "postgres") -> str:
    return database_url.rsplit("/", 1)[0] + f"/{dbname}"


def create_postgres_database(server_url: str, name: str) -> str:
    """A new, empty database on the server of server_url (dropped first if left over)."""
    with psycopg.connect(admin_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_url(server_url, name)


def drop_postgres_database(database_url: str) -> None:
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fresh_database_url(tmp_path: Path, label: str) -> str:
    """An empty database of the kind this test run uses (PostgreSQL or SQLite)."""
    if on_postgres():
        run_db = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
        url = create_postgres_database(os.environ["DATABASE_URL"], f"{run_db}_{label}")
        if "EVENTS_DATABASE_URL" in os.environ:
            create_postgres_database(url, events_url(url).rsplit("/", 1)[1])
        return url
    return f"sqlite:///{tmp_path / (label + '.sqlite3')}"


def drop_database(database_url: str) -> None:
    if database_url.startswith("postgres"):
        drop_postgres_database(database_url)
        if "EVENTS_DATABASE_URL" in os.environ:
            drop_postgres_database(events_url(database_url))


@dataclass
class IssuedApp:
    org_id: str
    app_id: str
    secret: str
    token: str

    @property
    def path(self) -> str:
        return f"/v1/ingest/{self.org_id}/{self.app_id}"


def create_app(env: dict[str, str], name: str = "ops-test") -> IssuedApp:
    out = manage("create_app", "--org", "Ops", "--app", name, "--json", env=env).stdout
    data = orjson.loads(out)
    return IssuedApp(data["org_id"], data["app_id"], data["secret"], data["token"])


def count_events(database_url: str, app_id: str) -> tuple[int, int]:
    """(rows, distinct event ids) stored for the app, read straight from the database."""
    query = (
        "SELECT count(*), count(DISTINCT e.event_id) FROM telemetry_event e "
        "JOIN organizations_app a ON a.id = e.app_id WHERE a.public_id = %s"
    )
    if database_url.startswith("postgres"):
        with psycopg.connect(database_url) as conn:
            return conn.execute(query, [app_id]).fetchone()
    import sqlite3

    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(query.replace("%s", "?"), [app_id]).fetchone()


# --- HTTP ------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return orjson.loads(self.body)


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def signed_post(port: int, app: IssuedApp, body: bytes, *, secret: str | None = None, nonce: str | None = None,
                headers: dict | None = None, timeout: float = 30) -> Answer:
    """POST a batch signed the SDK's way, with a new timestamp and nonce (as each SDK retry has)."""
    timestamp = str(int(time.time()))
    nonce = nonce or str(uuid.uuid4())
    signed = {
        "Content-Type": "application/json",
        "X-Timestamp": timestamp,
        "X-Nonce": nonce,
        "X-Signature": sign(secret or app.secret, timestamp, body, nonce),
        "X-SDK-Version": "telemetry-kit-rust/0.3.0",
        **(headers or {}),
    }
    return request(port, "POST", app.path, body, signed, timeout=timeout)


# --- gunicorn -------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path
    metrics_dir: Path
    env: dict[str, str] = field(repr=False)

    def log_lines(self) -> list[dict]:
        """Every line the server wrote, parsed as JSON (fails on a line that is not)."""
        return [orjson.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        end_session(self.process)


    def bound(self, timeout: float = 30) -> bool:
        """True once this gunicorn listens on its port; False if another process holds it."""
        listening = f"Listening at: http://127.0.0.1:{self.port} "
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text()
            if listening in text:
                return True
            if "Connection in use" in text or self.process.poll() is not None:
                return False
            time.sleep(0.05)
        raise RuntimeError(f"server did not bind in {timeout} s:\n{self.log_path.read_text()}")

    def wait_live(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if request(self.port, "GET", "/live", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not live after {timeout} s:\n{self.log_path.read_text()}")


def end_session(process: subprocess.Popen) -> None:
    """Kill whatever is left of a server started with start_new_session=True: a worker
    stuck in a system call outlives a master that gave up waiting for it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_gunicorn(tmp_path: Path, database_url: str, *, workers: int = 2, **env: str) -> Server:
    """gunicorn with the repository's config/gunicorn.py, as `make serve` runs it.

    If another process takes the chosen port first, it tries another: a server
    that answers on a port it did not bind would be someone else's."""
    for _ in range(5):
        port = free_port()
        metrics_dir = tmp_path / f"prometheus-{port}"
        log_path = tmp_path / f"gunicorn-{port}.log"
        child_env = base_env(
            DATABASE_URL=database_url,
            CLACKS_VAR_DIR=str(tmp_path / "var"),
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            WEB_CONCURRENCY=str(workers),
            **env,
        )
        prepare(child_env)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(BIN / "gunicorn"), "--config", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}", "config.wsgi"],
                cwd=REPO, env=child_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        server = Server(port, process, log_path, metrics_dir, child_env)
        try:
            if not server.bound():
                server.stop()
                continue
            server.wait_live()
        except Exception:
            server.stop()
            raise
        return server
    raise RuntimeError("could not bind a port for gunicorn in 5 tries")


def scrape(port: int, headers: dict | None = None) -> dict[tuple[str, frozenset], float]:
    """/metrics as {(sample name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = request(port, "GET", "/metrics", headers=headers)
    assert answer.status == 200, answer.body
    samples = {}
    for family in text_string_to_metric_families(answer.body.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- A private PostgreSQL, to stop and start at will -------------------------------------


def private_postgres() -> PostgresCluster:
    """A throwaway cluster on a port of PORTS (tests/pgcluster.py); destroy() it after."""
    return PostgresCluster(free_port=free_port)
