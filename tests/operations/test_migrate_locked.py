"""manage.py migrate_locked: migrations applied once however many instances start
together (telemetry/management/commands/migrate_locked.py; docker/tests runs two
containers of the image at once against it)."""

from __future__ import annotations

import json
import subprocess
import time

import psycopg
import pytest

from telemetry.management.commands.migrate_locked import LOCK_KEY
from tests.operations import servers


@pytest.fixture
def empty_database(tmp_path):
    url = servers.fresh_database_url(tmp_path, "migrate_locked")
    yield url
    servers.drop_database(url)


def messages(output: str) -> list[str]:
    found = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") == "clacks.migrate":
            found.append(record["message"])
    return found


def test_it_applies_the_pending_migrations_then_finds_none(empty_database):
    env = servers.base_env(DATABASE_URL=empty_database)

    first = servers.manage("migrate_locked", env=env)
    again = servers.manage("migrate_locked", env=env)

    [applied] = messages(first.stdout)
    assert applied.startswith("applied ") and int(applied.split()[1]) > 10
    assert messages(again.stdout)[0].startswith("no migrations to apply")
    assert "[ ]" not in servers.manage("showmigrations", "--plan", env=env).stdout


@pytest.mark.postgres
def test_a_second_instance_waits_for_the_lock(empty_database):
    env = servers.base_env(DATABASE_URL=empty_database)
    with psycopg.connect(empty_database) as holder:
        # Another instance in the middle of its migrations (the key written in, as the command does).
        holder.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
        waiting = subprocess.Popen([str(servers.BIN / "python"), "manage.py", "migrate_locked"], cwd=servers.REPO,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(5)
            assert waiting.poll() is None  # still waiting for the lock
            with psycopg.connect(empty_database, autocommit=True) as other:
                assert other.execute("SELECT to_regclass('django_migrations')").fetchone()[0] is None
                # The other instance's migrations may build an index concurrently, which waits for
                # every older snapshot: the waiting one must hold none (it polls), or both wait for ever.
                other.execute("SET statement_timeout = '30s'")
                other.execute("CREATE TABLE concurrently_indexed (n int)")
                other.execute("CREATE INDEX CONCURRENTLY concurrently_indexed_n ON concurrently_indexed (n)")
        finally:
            holder.rollback()  # the other instance is done: the lock is free
        output, _ = waiting.communicate(timeout=300)

    assert waiting.returncode == 0, output
    found = messages(output)
    assert found[0] == "another instance is applying migrations; waiting for the migration lock"
    assert found[1].startswith("applied ")


@pytest.mark.postgres
def test_two_instances_started_together_apply_the_migrations_once(empty_database):
    # The real thing: the first one's migrations include CREATE INDEX CONCURRENTLY
    # (telemetry 0014) while the second waits.
    env = servers.base_env(DATABASE_URL=empty_database)
    both = [subprocess.Popen([str(servers.BIN / "python"), "manage.py", "migrate_locked"], cwd=servers.REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in both]

    assert [process.returncode for process in both] == [0, 0], outputs
    found = sorted(message.split(" (")[0] for output in outputs for message in messages(output))
    assert found[0].startswith("another instance is applying migrations"), found
    assert found[1].startswith("applied ") and found[2] == "no migrations to apply", found
    with psycopg.connect(empty_database) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations").fetchone()
    assert rows == distinct
