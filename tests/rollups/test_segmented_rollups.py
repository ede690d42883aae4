"""The segmented dimensions and UserDay as ingest writes them, against the
Python definition (telemetry.rollups.event_facts) over the stored events.

On PostgreSQL ingest and rebuilds compute the rollups in SQL (facts_sql) while
deletions subtract what Python computes from the stored rows, so the two
must agree on every event, or a deletion would leave counts behind.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timezone

import orjson
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from telemetry import ingest, rollups, storage
from telemetry.models import Event, HourlyRollup, UserDay
from tests.factories import iso, make_event
from tests.rollups import strategies
from tests.rollups.test_rollups import expected_user_days, ingest_rows, python_rows, snapshot, user_days

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=timezone.utc)


def store_events(app, events: list[dict]) -> list[dict]:
    batch = ingest.validate_events(events, now=NOW)
    assert not batch.errors, batch.errors
    storage.store_batch(app.pk, batch.rows, received_at=NOW)
    return batch.rows


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(strategies.events(now=NOW), min_size=1, max_size=12), seed=st.integers(0, 2**16))
def test_ingest_writes_what_python_computes_from_the_stored_events(app, events, seed):
    """Every dimension and count ingest wrote (SQL on PostgreSQL) equals what
    event_facts gives for the stored events, and for the events as ingest parsed
    them; a deletion then takes out exactly its events' share."""
    storage.delete_app_events(app.pk)
    rows = store_events(app, events)

    written = snapshot(app)[0]
    assert written == python_rows(app)
    assert ingest_rows(rows) == written
    assert user_days(app) == expected_user_days(app)

    pks = sorted(Event.objects.filter(app=app).values_list("pk", flat=True))
    doomed = random.Random(seed).sample(pks, random.Random(seed).randint(1, len(pks)))
    storage.delete_events(app.pk, doomed)

    assert snapshot(app)[0] == python_rows(app)
    assert user_days(app) == expected_user_days(app)
    storage.rebuild_derived(app.pk)
    assert snapshot(app)[0] == python_rows(app)
    assert user_days(app) == expected_user_days(app)


def test_a_segmented_value_keeps_its_parts_whatever_the_fields_hold(app):
    """Parts are cut to their lengths and lose the separator, so a value splits
    back into the parts it was made of; the same on both databases."""
    sep = rollups.SEP
    event = orjson.loads(orjson.dumps(make_event(
        timestamp=iso(NOW),
        service={"name": "my-cli", "version": "v" * 70 + sep, "language": "rust"},
        environment={"os": "li" + sep + "nux", "os_version": "é" * 100, "arch": "x" * 63 + sep + "yz", "ci": True},
        event={"type": rollups.COMMAND_EVENT_TYPE, "category": "c" + sep,
               "data": {"command": "c" * 127 + sep + "d" * 80, "exit_code": 2.0, "duration_ms": 7.9,
                        "flags": ["-v", "-v", "--a" + sep + "b", 5, None, "f" * 70] + ["-q"] * 40 + ["--late"]}},
    )))  # fmt: skip
    store_events(app, [event])

    rows = {(dimension, value) for (_hour, dimension, value) in snapshot(app)[0]}
    segment = sep.join(["v" * 64, "li nux", "x" * 63 + " ", "true"])
    run = "c" * 127 + " " + sep + segment
    assert ("segment", segment + sep + "é" * 64) in rows
    assert ("seg_type", segment + sep + rollups.COMMAND_EVENT_TYPE + sep + "c ") in rows
    assert ("cmd", run) in rows
    assert ("cmd_exit", run + sep + "2") in rows
    assert ("cmd_duration", run + sep + str(rollups.duration_bucket(7))) in rows
    assert ("version_duration", sep.join(["v" * 64, "c" * 127 + " ", str(rollups.duration_bucket(7))])) in rows
    flags = {value.rsplit(sep, 1)[1] for dimension, value in rows if dimension == "cmd_flag"}
    assert flags == {"-v", "--a b", "f" * 64, "-q"}  # "--late" is the 47th element: past the 32 read
    for dimension, value in rows:
        if dimension in rollups.SEGMENTED_DIMENSIONS:
            assert len(value.split(sep)) == len(rollups.SEGMENTED_DIMENSIONS[dimension])
            assert len(value) <= 400
    assert python_rows(app) == snapshot(app)[0]


def test_rebuild_rollups_computes_the_segments_of_events_stored_before_them(app):
    """Events stored before migration 0012 have plain rollups only; the command
    adds their segmented rows and user days (README, Upgrades)."""
    events = [
        make_event(timestamp=iso(NOW), event={"type": rollups.COMMAND_EVENT_TYPE, "category": "usage",
                   "data": {"command": "build", "duration_ms": 40, "exit_code": 1, "flags": ["-v"]}}),
        make_event(timestamp=iso(NOW), event={"type": "feature_used", "data": {}}),
    ]  # fmt: skip
    store_events(app, events)
    storage.fold_rollup_deltas()
    written = snapshot(app)[0], user_days(app)
    HourlyRollup.objects.filter(app=app, dimension__in=list(rollups.SEGMENTED_DIMENSIONS)).delete()
    UserDay.objects.filter(app=app).delete()
    assert not any(dimension in rollups.SEGMENTED_DIMENSIONS for _, dimension, _ in snapshot(app)[0])

    call_command("rebuild_rollups", app.public_id, stdout=io.StringIO())

    assert (snapshot(app)[0], user_days(app)) == written
    assert {dimension for _, dimension, _ in written[0]} >= set(rollups.SEGMENTED_DIMENSIONS)
