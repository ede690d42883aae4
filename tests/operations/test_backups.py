"""bin/dbbackup: backups with retention, a restore check, and restore, on PostgreSQL
(pg_dump in one snapshot) and on SQLite (the backup API, safe while serving)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.operations import servers

SCRIPT = servers.REPO / "bin" / "dbbackup"


def dbbackup(database_url: str, directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--database-url", database_url, "--dir", str(directory), *args],
        capture_output=True, text=True, timeout=300, env=servers.base_env(),
    )


def backups_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


class Writer(threading.Thread):
    """Inserts rows without pause until stopped, as a serving Clacks would."""

    def __init__(self, insert):
        super().__init__(daemon=True)
        self.insert, self.rows, self.stopping = insert, 0, threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.insert(self.rows)
            self.rows += 1

    def stop(self):
        self.stopping.set()
        self.join(10)


# --- SQLite ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_database(tmp_path):
    path = tmp_path / "clacks.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # as settings.py opens it
    conn.execute("CREATE TABLE telemetry_event (id INTEGER PRIMARY KEY, data TEXT)")
    conn.executemany("INSERT INTO telemetry_event (data) VALUES (?)", [("x" * 200,)] * 5000)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def test_a_sqlite_backup_taken_while_writing_restores_to_its_manifest(sqlite_database, tmp_path):
    conn = sqlite3.connect(sqlite_database.removeprefix("sqlite:///"), check_same_thread=False, timeout=30)

    def insert(n):
        conn.execute("INSERT INTO telemetry_event (data) VALUES (?)", (f"row {n}",))
        conn.commit()

    writer = Writer(insert)
    writer.start()
    while writer.rows < 50:
        time.sleep(0.01)
    made = dbbackup(sqlite_database, tmp_path / "backups", "backup")
    writer.stop()
    conn.close()

    assert made.returncode == 0, made.stderr
    [backup, manifest] = backups_in(tmp_path / "backups")
    assert backup.endswith(".sqlite3") and manifest == backup + ".json"
    counted = json.loads((tmp_path / "backups" / manifest).read_text())["tables"]["telemetry_event"]
    assert 5050 <= counted <= 5000 + writer.rows
    checked = dbbackup(sqlite_database, tmp_path / "backups", "check")
    assert checked.returncode == 0, checked.stderr
    assert "every table's row count matches" in checked.stdout

    restored = tmp_path / "restored.sqlite3"
    assert dbbackup(sqlite_database, tmp_path / "backups", "restore", str(tmp_path / "backups" / backup),
                    "--to", f"sqlite:///{restored}").returncode == 0
    with sqlite3.connect(restored) as copy:
        assert copy.execute("SELECT count(*) FROM telemetry_event").fetchone()[0] == counted


def test_backups_past_keep_are_deleted_oldest_first(sqlite_database, tmp_path):
    made = []
    for _ in range(4):
        result = dbbackup(sqlite_database, tmp_path / "backups", "backup", "--keep", "2")
        assert result.returncode == 0, result.stderr
        made.append(Path(result.stdout.split()[0]).name)

    assert backups_in(tmp_path / "backups") == sorted([made[2], made[2] + ".json", made[3], made[3] + ".json"])


def test_the_check_fails_on_a_damaged_backup(sqlite_database, tmp_path):
    dbbackup(sqlite_database, tmp_path / "backups", "backup")
    [backup] = [path for path in (tmp_path / "backups").iterdir() if path.suffix == ".sqlite3"]
    data = bytearray(backup.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096  # a page of garbage
    backup.write_bytes(bytes(data))

    checked = dbbackup(sqlite_database, tmp_path / "backups", "check")

    assert checked.returncode == 1
    assert checked.stderr.startswith("dbbackup: ") and "Traceback" not in checked.stderr


# --- PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def postgres_database(tmp_path):
    url = servers.fresh_database_url(tmp_path, "backup")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE telemetry_event (id bigserial PRIMARY KEY, data jsonb)")
        conn.execute("CREATE TABLE organizations_app (id bigserial PRIMARY KEY, name text)")
        conn.execute("INSERT INTO telemetry_event (data) SELECT jsonb_build_object('n', g) FROM generate_series(1, 20000) g")
        conn.execute("INSERT INTO organizations_app (name) VALUES ('a'), ('b')")
    yield url
    servers.drop_database(url)


def scratch_databases(url: str) -> list[str]:
    with psycopg.connect(servers.admin_url(url), autocommit=True) as conn:
        return [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%restore_check'")]


@pytest.mark.postgres
def test_a_postgres_backup_is_one_snapshot_even_while_events_arrive(on_postgres, postgres_database, tmp_path):
    conn = psycopg.connect(postgres_database, autocommit=True)
    writer = Writer(lambda n: conn.execute("INSERT INTO telemetry_event (data) VALUES ('{}')"))
    writer.start()
    while writer.rows < 50:
        time.sleep(0.01)
    made = dbbackup(postgres_database, tmp_path / "backups", "backup")
    writer.stop()
    conn.close()

    assert made.returncode == 0, made.stderr
    checked = dbbackup(postgres_database, tmp_path / "backups", "check")
    assert checked.returncode == 0, checked.stderr
    [manifest] = (tmp_path / "backups").glob("*.json")
    tables = json.loads(manifest.read_text())["tables"]
    assert tables["organizations_app"] == 2
    assert 20050 <= tables["telemetry_event"] < 20000 + writer.rows  # rows kept arriving after the snapshot
    assert scratch_databases(postgres_database) == []  # the scratch database is gone


@pytest.mark.postgres
def test_the_postgres_check_reports_a_count_that_does_not_match(on_postgres, postgres_database, tmp_path):
    dbbackup(postgres_database, tmp_path / "backups", "backup")
    [manifest] = (tmp_path / "backups").glob("*.json")
    content = json.loads(manifest.read_text())
    content["tables"]["organizations_app"] = 3
    manifest.write_text(json.dumps(content))

    checked = dbbackup(postgres_database, tmp_path / "backups", "check")

    assert checked.returncode == 1
    assert "MISMATCH organizations_app: manifest 3, restored 2" in checked.stderr
    assert scratch_databases(postgres_database) == []


@pytest.mark.postgres
def test_a_postgres_backup_restores_into_another_database(on_postgres, postgres_database, tmp_path):
    dbbackup(postgres_database, tmp_path / "backups", "backup", "--keep", "1")
    dbbackup(postgres_database, tmp_path / "backups", "backup", "--keep", "1")
    [dump] = (tmp_path / "backups").glob("*.dump")
    target = servers.create_postgres_database(postgres_database, postgres_database.rsplit("/", 1)[1] + "_target")
    try:
        restored = dbbackup(postgres_database, tmp_path / "backups", "restore", str(dump), "--to", target)
        again = dbbackup(postgres_database, tmp_path / "backups", "restore", str(dump), "--to", target)

        assert restored.returncode == again.returncode == 0, restored.stderr + again.stderr
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM telemetry_event").fetchone()[0] == 20000
            assert conn.execute("SELECT max((data->>'n')::int) FROM telemetry_event").fetchone()[0] == 20000
    finally:
        servers.drop_postgres_database(target)
