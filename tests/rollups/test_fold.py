"""Folding rollup deltas into the hourly rollups: exact, crash-safe, safe to run concurrently (docs/storage.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from django.db import connection, connections, transaction

from telemetry import storage
from telemetry.models import Event, HourlyRollup, RollupDelta
from tests.factories import iso, make_event
from tests.rollups.test_rollups import command, snapshot, store

UTC = timezone.utc
NOW = datetime.now(UTC).replace(microsecond=0)
ROOT = Path(__file__).resolve().parents[2]


def history(n: int, *, offset: int = 0) -> list[dict]:
    return [
        command(name=f"cmd{i % 3}", success=i % 4 != 0, duration=i * 7, at=NOW - timedelta(hours=(i + offset) % 50),
                user=f"client_{i % 11}", session=f"sess_{i % 13}")
        for i in range(n)
    ]


def test_ingest_appends_deltas_and_reads_see_them_before_the_fold(app):
    store(app, history(30))

    assert RollupDelta.objects.filter(app=app).exists()
    assert not HourlyRollup.objects.filter(app=app).exists()
    before = snapshot(app)
    assert sum(counts[0] for (_h, dimension, _v), counts in before[0].items() if dimension == "total") == 30

    result = storage.fold_rollup_deltas()

    assert result.folded > 0 and result.oldest is not None
    assert not RollupDelta.objects.exists()
    assert snapshot(app) == before


def test_a_deletion_before_the_fold_leaves_no_empty_rows(app):
    store(app, [command(user="client_only")])

    storage.delete_events(app.pk, list(Event.objects.filter(app=app).values_list("pk", flat=True)))
    assert snapshot(app)[0] == {}

    storage.fold_rollup_deltas()

    assert not HourlyRollup.objects.filter(app=app).exists()
    assert not RollupDelta.objects.exists()


def test_the_fold_moves_chunks_until_nothing_is_left(app):
    for start in range(0, 60, 10):
        store(app, history(10, offset=start))
    before = snapshot(app)
    waiting = RollupDelta.objects.count()

    result = storage.fold_rollup_deltas(chunk=23)

    assert result.folded == waiting
    assert snapshot(app) == before


def test_a_fold_that_fails_part_way_leaves_every_delta_in_place(app, monkeypatch):
    store(app, history(40))
    before, waiting = snapshot(app), RollupDelta.objects.count()
    real_execute = connection.cursor().__class__.execute
    calls = {"n": 0}

    def execute_then_fail(self, sql, params=None):
        result = real_execute(self, sql, params)
        if "telemetry_hourlyrollup" in sql and "INSERT" in sql:
            calls["n"] += 1
            raise RuntimeError("the process died here")
        return result

    monkeypatch.setattr(connection.cursor().__class__, "execute", execute_then_fail)
    with pytest.raises(RuntimeError):
        storage.fold_rollup_deltas()
    monkeypatch.undo()

    assert calls["n"] == 1
    assert RollupDelta.objects.count() == waiting
    assert snapshot(app) == before
    storage.fold_rollup_deltas()
    assert snapshot(app) == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_folds_running_beside_ingest_and_each_other_count_everything_once(on_postgres, app):
    batches = [history(25, offset=i * 3) for i in range(24)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest_all():
        try:
            for batch in batches:
                store(app, batch)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)
        finally:
            connections.close_all()

    def fold_until_stopped():
        try:
            while not stop.is_set():
                storage.fold_rollup_deltas(chunk=40)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    folders = [threading.Thread(target=fold_until_stopped) for _ in range(3)]
    writers = [threading.Thread(target=ingest_all)]
    for thread in folders + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in folders:
        thread.join()

    assert errors == []
    storage.fold_rollup_deltas()
    folded = snapshot(app)
    storage.rebuild_derived(app.pk)
    assert snapshot(app) == folded
    total = sum(counts[0] for (_h, dimension, _v), counts in folded[0].items() if dimension == "total")
    assert total == sum(len(batch) for batch in batches)


_FOLD_IN_A_CHILD = """
import django
django.setup()
from telemetry import storage
print("folding", flush=True)
storage.fold_rollup_deltas()
print("done", flush=True)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_fold_killed_mid_way_loses_nothing_and_counts_nothing_twice(on_postgres, app):
    store(app, history(60))
    storage.fold_rollup_deltas()  # rows the next fold must add to
    store(app, history(60))
    before, waiting = snapshot(app), RollupDelta.objects.count()
    settings = connection.settings_dict
    dsn = f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname={settings['NAME']}"

    with psycopg.connect(dsn, autocommit=False) as blocker, psycopg.connect(dsn, autocommit=True) as watcher:
        # Hold a lock on a rollup row, so the child's fold stops inside its transaction,
        # after it has deleted the deltas and while it is adding them up.
        blocker.execute("SELECT 1 FROM telemetry_hourlyrollup WHERE app_id = %s FOR UPDATE", [app.pk])
        env = {**os.environ, "DATABASE_URL": f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}",
               "DJANGO_SETTINGS_MODULE": "config.settings"}
        child = subprocess.Popen([sys.executable, "-c", _FOLD_IN_A_CHILD], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "folding"
            backend = None
            # Wait until the child's statement waits for the lock. Polled from a
            # connection of its own: inside the blocker's transaction the view would not change.
            for _ in range(200):
                row = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                    ["%telemetry_rollupdelta%"],
                ).fetchone()
                if row:
                    backend = row[0]
                    break
                time.sleep(0.05)
            assert backend is not None, "the fold never reached the locked row"
            child.send_signal(signal.SIGKILL)  # the process dies mid-fold
            child.wait(timeout=10)
            # and its database session with it, as after a crash of the machine it ran on.
            watcher.execute("SELECT pg_terminate_backend(%s)", [backend])
            # pg_terminate_backend only signals; until the backend has gone its row
            # locks stand, and the fold below would skip the rows they cover.
            for _ in range(200):
                if not watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [backend]).fetchone():
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the killed fold's backend never ended")
        finally:
            if child.poll() is None:
                child.kill()
        blocker.rollback()

    assert RollupDelta.objects.count() == waiting  # the killed fold's deletions were rolled back
    assert snapshot(app) == before
    storage.fold_rollup_deltas()
    assert not RollupDelta.objects.exists()
    assert snapshot(app) == before


def test_unfolded_deltas_reports_the_backlog(app):
    assert storage.unfolded_deltas() == (0, None)
    store(app, [make_event(timestamp=iso(NOW))])

    count, oldest = storage.unfolded_deltas()

    assert count > 0
    assert abs((datetime.now(UTC) - oldest).total_seconds()) < 120
    with transaction.atomic():
        storage.fold_rollup_deltas()
    assert storage.unfolded_deltas() == (0, None)


def test_metrics_and_health_show_the_backlog_until_the_fold_runs(client, app):
    store(app, history(5))
    waiting = RollupDelta.objects.count()

    metrics = client.get("/metrics").content.decode()
    assert f"\nclacks_rollup_deltas_pending {float(waiting)}" in metrics
    assert client.get("/health").json()["rollups"]["pending_deltas"] == waiting

    storage.fold_rollup_deltas()

    metrics = client.get("/metrics").content.decode()
    assert "\nclacks_rollup_deltas_pending 0.0" in metrics
    assert "\nclacks_rollup_fold_lag_seconds 0.0" in metrics
    assert client.get("/health").json()["rollups"] == {"pending_deltas": 0, "oldest_delta_seconds": 0.0}


@pytest.mark.postgres
def test_a_fold_reads_its_chunk_once_when_statistics_say_the_table_is_empty(on_postgres, app):
    store(app, history(300))
    storage.fold_rollup_deltas()
    with connection.cursor() as cursor:
        # Statistics of the emptied table: pages on disk, no rows (density zero).
        cursor.execute(f"ANALYZE {RollupDelta._meta.db_table}")
    store(app, history(600, offset=7))  # then a backlog, as a rebuild or a burst leaves
    plans = []

    def explain(execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH moved AS") and not plans:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN " + sql, params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        storage.fold_rollup_deltas(chunk=500)

    # A join against the locking subquery re-runs it for every delta row: minutes per chunk of 50,000.
    assert plans and "Semi Join" not in plans[0] and "LockRows" in plans[0], plans
    assert not RollupDelta.objects.exists()
