#!/usr/bin/env python3
"""How fast PostgreSQL takes the load generator's events, without HTTP or Django views.

Writes the same SDK-shaped events as bench/ingest_load.py straight into the
events table (under a scratch app whose rows are deleted afterwards), over a
single connection, one transaction per batch:

- `copy`: plain COPY, not idempotent: the raw ceiling ingest is compared with;
- `store_batch`: the ingest path's own statement (telemetry.storage.store_batch)
  with rows already validated, so the gap between the two is the statement's
  cost and the gap to the HTTP figure is everything else;
- `store_no_rollups` (asked for with --method): the same statement with its
  rollup deltas and daily actors taken out (in this process only), to show
  what keeping the aggregates in step costs per batch.

It also times per-event validation (telemetry.ingest.validate_events), which
costs Python CPU in every ingest request.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clacks_bench .venv/bin/python bench/storage_ceiling.py

Columns come from the Event model, so a column added later (a partition key,
say) is written too as long as the validated row or the field default has it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from sdk_events import make_event  # noqa: E402


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


# --- Rows --------------------------------------------------------------------------------


def validated_rows(count: int, *, seed: int, now: datetime) -> list[dict]:
    """`count` events as the ingest path would store them (validated rows)."""
    from telemetry.ingest import validate_events

    rng = random.Random(seed)
    batch = validate_events([make_event(rng, now=now) for _ in range(count)], now=now)
    assert not batch.errors, batch.errors[:3]
    return batch.rows


def event_columns():
    """(column names, functions turning a validated row into those columns' values) for COPY."""
    from telemetry.models import Event

    columns, getters = [], []
    for field in Event._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.name == "app":
            getters.append(lambda row, app_pk, now: app_pk)
        elif field.name == "received_at":
            getters.append(lambda row, app_pk, now: now)
        elif field.name == "data":
            getters.append(lambda row, app_pk, now: row["data"].decode())  # jsonb as text
        elif field.has_default():
            getters.append(lambda row, app_pk, now, f=field: row[f.name] if f.name in row else f.get_default())
        else:
            getters.append(lambda row, app_pk, now, name=field.name: row[name])
    return columns, getters


# --- Methods -----------------------------------------------------------------------------


def copy_batches(batches: list[list[dict]], *, app_pk: int, now: datetime) -> None:
    from django.db import connection

    from telemetry.models import Event

    columns, getters = event_columns()
    sql = f"COPY {Event._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    connection.ensure_connection()
    raw = connection.connection  # the psycopg connection, in autocommit mode
    with raw.cursor() as cursor:
        for batch in batches:
            with raw.transaction():
                with cursor.copy(sql) as copy:
                    for row in batch:
                        copy.write_row([get(row, app_pk, now) for get in getters])


def store_batches(batches: list[list[dict]], *, app_pk: int, now: datetime) -> None:
    from telemetry.storage import store_batch

    for batch in batches:
        inserted = store_batch(app_pk, batch, received_at=now)
        assert inserted == len(batch), (inserted, len(batch))


def store_batches_without_rollups(batches: list[list[dict]], *, app_pk: int, now: datetime) -> None:
    """store_batch with the rollup deltas and daily actors taken out of its statement: what they cost."""
    from telemetry import storage

    full = storage._STORE_SQL_POSTGRESQL
    storage._STORE_SQL_POSTGRESQL = storage._store_sql_postgresql(derived=False)
    try:
        store_batches(batches, app_pk=app_pk, now=now)
    finally:
        storage._STORE_SQL_POSTGRESQL = full


METHODS = {"copy": copy_batches, "store_batch": store_batches, "store_no_rollups": store_batches_without_rollups}


# --- The run ------------------------------------------------------------------------------


def scratch_app():
    """A throwaway app under the 'Clacks bench ceiling' organization."""
    from organizations.models import Organization
    from organizations.services import create_app, create_organization

    org = Organization.objects.filter(name="Clacks bench ceiling").first() or create_organization(
        name="Clacks bench ceiling"
    )
    app, _ = create_app(organization=org, name=f"ceiling-{os.getpid()}-{time.time_ns() % 10**6}")
    return app


def drop_scratch_app(app) -> None:
    from telemetry import storage

    storage.delete_app_events(app.pk, batch_size=100_000)
    app.delete()


def _run_parallel(method: str, batches: list[list[dict]], *, app_pk: int, now: datetime, connections: int) -> None:
    """Split the batches over `connections` processes, each with its own connection."""
    import multiprocessing

    from django.db import connections as django_connections

    django_connections.close_all()  # each child opens its own
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=METHODS[method], args=(batches[i::connections],), kwargs={"app_pk": app_pk, "now": now})
        for i in range(connections)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{method} failed in a child process")


def measure_ceiling(
    *,
    batch_sizes: tuple[int, ...] = (100, 1000),
    events: int = 50_000,
    repeat: int = 3,
    methods: tuple[str, ...] = ("copy", "store_batch"),
    seed: int = 1,
    connections: int = 1,
) -> list[dict]:
    """Events/s for each method and batch size: the median of `repeat` runs of `events` events.

    Runs alternate between methods so a machine that drifts in speed hurts both alike.
    With connections > 1, that many processes write the same app's batches at
    once, as gunicorn workers do (row locks shared by batches show up here)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("storage_ceiling.py needs DATABASE_URL=postgres://...")
    now = datetime.now(timezone.utc)
    app = scratch_app()
    results = []
    try:
        for batch_size in batch_sizes:
            rates: dict[str, list[float]] = {method: [] for method in methods}
            for run in range(repeat):
                for method in methods:
                    rows = validated_rows(events, seed=seed + run * 7919 + len(results), now=now)
                    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
                    started = time.perf_counter()
                    if connections == 1:
                        METHODS[method](batches, app_pk=app.pk, now=now)
                    else:
                        _run_parallel(method, batches, app_pk=app.pk, now=now, connections=connections)
                    rates[method].append(len(rows) / (time.perf_counter() - started))
            for method in methods:
                results.append(
                    {
                        "method": method,
                        "batch_size": batch_size,
                        "connections": connections,
                        "events": events,
                        "events_per_s": statistics.median(rates[method]),
                        "runs": rates[method],
                    }
                )
    finally:
        drop_scratch_app(app)
    return results


def measure_validation(*, events: int = 20_000, seed: int = 2) -> float:
    """Microseconds of Python CPU per event for telemetry.ingest.validate_events."""
    import orjson

    from telemetry.ingest import validate_events

    now = datetime.now(timezone.utc)
    rng = random.Random(seed)
    parsed = orjson.loads(orjson.dumps([make_event(rng, now=now) for _ in range(events)]))
    started = time.process_time()
    validate_events(parsed, now=now)
    return (time.process_time() - started) / events * 1e6


def report(results: list[dict], validation_us: float | None = None) -> str:
    connections = results[0]["connections"] if results else 1
    where = "single connection" if connections == 1 else f"{connections} connections at once, one app"
    lines = [f"storage ceiling: {where}, one transaction per batch, into the events table"]
    for result in results:
        runs = ", ".join(f"{rate:,.0f}" for rate in result["runs"])
        lines.append(
            f"  {result['method']:<16} batch {result['batch_size']:>5}  {result['events_per_s']:>9,.0f} events/s"
            f"   (median of {len(result['runs'])} runs: {runs})"
        )
    if validation_us is not None:
        lines.append(f"  validation       {validation_us:.1f} us of CPU per event (telemetry.ingest.validate_events)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, action="append", help="repeatable; default 100 and 1000")
    parser.add_argument("--events", type=int, default=50_000, help="events per run (default 50,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is printed (default 3)")
    parser.add_argument("--method", choices=sorted(METHODS), action="append", help="repeatable; default all")
    parser.add_argument("--connections", type=int, default=1, help="write from this many processes at once (default 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    setup_django()
    results = measure_ceiling(
        batch_sizes=tuple(args.batch_size or (100, 1000)),
        events=args.events,
        repeat=args.repeat,
        methods=tuple(args.method or ("copy", "store_batch")),
        connections=args.connections,
    )
    validation = measure_validation()
    if args.json:
        print(json.dumps({"results": results, "validation_us_per_event": validation}, indent=2))
    else:
        print(report(results, validation))


if __name__ == "__main__":
    main()
