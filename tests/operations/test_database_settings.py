"""The database settings for PgBouncer, a read replica and an events database, read in a fresh process
(config/settings.py; docs/pgbouncer.md, docs/replicas.md, docs/events-database.md)."""

from __future__ import annotations

import json
import subprocess

from tests.operations import servers
from tests.operations.test_settings import fresh_env

READ_DATABASES = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from django.conf import settings
print(json.dumps({"databases": settings.DATABASES, "routers": settings.DATABASE_ROUTERS,
                  "replica_middleware": "telemetry.replicas.middleware" in settings.MIDDLEWARE}, default=str))
"""


def read(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(servers.BIN / "python"), "-c", READ_DATABASES], cwd=servers.REPO, capture_output=True, text=True,
        env=fresh_env(tmp_path, SECRET_KEY="k" * 50, **env), timeout=120,
    )  # fmt: skip


def test_without_a_pooler_postgresql_keeps_server_side_cursors_and_the_statement_timeout(tmp_path):
    done = read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/c", CLACKS_DB_STATEMENT_TIMEOUT_MS="3000")
    default = json.loads(done.stdout)["databases"]["default"]
    assert default.get("DISABLE_SERVER_SIDE_CURSORS", False) is False
    assert "prepare_threshold" not in default["OPTIONS"]
    assert default["OPTIONS"]["options"] == "-c statement_timeout=3000"


def test_behind_pgbouncer_nothing_is_kept_in_a_server_session(tmp_path):
    done = read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:6432/c", CLACKS_DB_POOLER="pgbouncer")
    default = json.loads(done.stdout)["databases"]["default"]
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert default["OPTIONS"]["prepare_threshold"] is None
    assert "options" not in default["OPTIONS"]


def test_a_statement_timeout_through_pgbouncer_is_refused_with_what_to_do_instead(tmp_path):
    done = read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:6432/c", CLACKS_DB_POOLER="pgbouncer",
                CLACKS_DB_STATEMENT_TIMEOUT_MS="3000")  # fmt: skip
    assert done.returncode != 0
    assert "ALTER ROLE <user> SET statement_timeout" in done.stderr


def test_an_unknown_pooler_is_refused(tmp_path):
    done = read(tmp_path, CLACKS_DB_POOLER="pgpool")
    assert done.returncode != 0 and "CLACKS_DB_POOLER='pgpool': use pgbouncer" in done.stderr


def test_a_replica_url_adds_the_alias_the_router_and_the_middleware(tmp_path):
    done = read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/c", DATABASE_REPLICA_URL="postgres://u@127.0.0.1:5433/c")
    settings = json.loads(done.stdout)
    assert settings["databases"]["replica"]["PORT"] == 5433
    assert settings["databases"]["replica"]["TEST"] == {"MIRROR": "default"}
    assert settings["routers"] == ["telemetry.replicas.ReplicaRouter"] and settings["replica_middleware"]

    without = json.loads(read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/c").stdout)
    assert "replica" not in without["databases"] and without["routers"] == [] and not without["replica_middleware"]


def test_a_replica_of_sqlite_is_refused(tmp_path):
    done = read(tmp_path, DATABASE_URL="", DATABASE_REPLICA_URL="postgres://u@127.0.0.1:5433/c")
    assert done.returncode != 0 and "a replica needs PostgreSQL for both URLs" in done.stderr


def test_an_events_url_adds_the_events_alias_without_foreign_keys_and_its_router(tmp_path):
    done = read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/c", EVENTS_DATABASE_URL="postgres://u@127.0.0.1:5434/e")
    settings = json.loads(done.stdout)
    events = settings["databases"]["events"]
    assert (events["NAME"], events["PORT"], events["CLACKS_NO_FOREIGN_KEYS"]) == ("e", 5434, True)
    assert "CLACKS_NO_FOREIGN_KEYS" not in settings["databases"]["default"]
    assert settings["routers"] == ["telemetry.databases.EventsRouter"]


def test_with_events_apart_the_replica_mirrors_the_events_database_and_routes_first(tmp_path):
    done = read(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/c", EVENTS_DATABASE_URL="postgres://u@127.0.0.1:5434/e",
                DATABASE_REPLICA_URL="postgres://u@127.0.0.1:5435/e")  # fmt: skip
    settings = json.loads(done.stdout)
    assert settings["databases"]["replica"]["TEST"] == {"MIRROR": "events"}
    assert settings["routers"] == ["telemetry.replicas.ReplicaRouter", "telemetry.databases.EventsRouter"]


def test_an_events_database_beside_sqlite_is_refused(tmp_path):
    done = read(tmp_path, DATABASE_URL="", EVENTS_DATABASE_URL="postgres://u@127.0.0.1:5434/e")
    assert done.returncode != 0 and "events on a server of their own need PostgreSQL for both URLs" in done.stderr
