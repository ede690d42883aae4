"""An event id is stored at most once per app, whatever its timestamp (docs/protocol.md, Idempotency)."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timedelta, timezone

import orjson
import pytest
from django.db import connections

from organizations.services import create_app
from telemetry import ingest, lifecycle, partitions, retention, storage
from telemetry.models import Event, EventKey
from tests.factories import iso, make_event
from tests.rollups.test_rollups import snapshot

UTC = timezone.utc
NOW = datetime.now(UTC).replace(microsecond=0)


def rows_of(events, *, now=None):
    batch = ingest.validate_events(events, now=now or datetime.now(UTC))
    assert not batch.errors, batch.errors
    return batch.rows


def same_id(event, **changes):
    """The event re-serialised with other fields, as a client may do on a retry."""
    again = orjson.loads(orjson.dumps(event))
    again.update(changes)
    return again


def stored_ids(app) -> list[str]:
    return sorted(str(value) for value in Event.objects.filter(app=app).values_list("event_id", flat=True))


def test_the_same_id_with_another_timestamp_in_a_later_batch_is_a_duplicate(signed_post, app):
    event = make_event(timestamp=iso(NOW))
    assert signed_post(app, {"events": [event]}).json()["duplicates"] == 0

    retry = same_id(event, timestamp=iso(NOW - timedelta(days=40)), user_id="client_changed")
    body = signed_post(app, {"events": [retry, make_event()]}).json()

    assert (body["status"], body["accepted"], body["duplicates"]) == ("success", 2, 1)
    assert Event.objects.filter(app=app).count() == 2
    assert Event.objects.get(app=app, event_id=event["event_id"]).user_id == event["user_id"]  # the first one stays


def test_an_id_twice_in_one_batch_is_stored_once_and_counted_as_a_duplicate(signed_post, app):
    event = make_event(timestamp=iso(NOW))
    twin = same_id(event, timestamp=iso(NOW - timedelta(hours=3)))

    body = signed_post(app, {"events": [event, twin, make_event()]}).json()

    assert (body["accepted"], body["duplicates"]) == (3, 1)
    assert Event.objects.filter(app=app).count() == 2
    # Counted once in the rollups too, at the first occurrence's hour.
    rows, _ = snapshot(app)
    assert sum(counts[0] for (hour, dimension, _v), counts in rows.items() if dimension == "total") == 2


def test_ids_are_per_app(org, app):
    other, _ = create_app(organization=org, name="other")
    event = make_event()
    assert storage.store_batch(app.pk, rows_of([event]), received_at=NOW) == 1
    assert storage.store_batch(other.pk, rows_of([event]), received_at=NOW) == 1


@pytest.mark.postgres
def test_the_same_id_in_two_time_partitions_is_stored_once(on_postgres, app):
    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))
    event = make_event(timestamp="2020-03-05T10:00:00Z")
    assert storage.store_batch(app.pk, rows_of([event]), received_at=NOW) == 1

    moved = same_id(event, timestamp=iso(NOW))
    assert storage.store_batch(app.pk, rows_of([moved]), received_at=NOW) == 0
    assert stored_ids(app) == [event["event_id"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_ids_with_different_timestamps_store_each_id_once(on_postgres, app):
    ids = [str(uuid.uuid4()) for _ in range(300)]
    workers = 6
    barrier = threading.Barrier(workers)
    inserted: list[int] = []

    def send(worker: int):
        try:
            # Each worker sends every id, each with its own timestamps, in its own order.
            events = [
                make_event(event_id=event_id, timestamp=iso(NOW - timedelta(hours=worker * 5 + i % 7)))
                for i, event_id in enumerate(ids[worker * 17 :] + ids[: worker * 17])
            ]
            rows = rows_of(events)
            barrier.wait()
            for start in range(0, len(rows), 100):
                inserted.append(storage.store_batch(app.pk, rows[start : start + 100], received_at=NOW))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(inserted) == len(ids)
    assert stored_ids(app) == sorted(ids)
    assert EventKey.objects.filter(app=app).count() == len(ids)


# --- The keys follow every deletion ----------------------------------------------------------


def keys_match_events(app) -> bool:
    keys = sorted(str(value) for value in EventKey.objects.filter(app=app).values_list("event_id", flat=True))
    return keys == stored_ids(app)


def test_retention_takes_the_keys_of_the_events_it_deletes(org, app):
    org.retention_days = 7
    org.save()
    old = make_event(timestamp=iso(NOW - timedelta(days=30)))
    storage.store_batch(app.pk, rows_of([old, make_event()]), received_at=NOW)

    assert retention.prune_app(app, now=datetime.now(UTC)).deleted == 1

    assert keys_match_events(app)
    assert EventKey.objects.filter(app=app).count() == 1


def test_erasure_takes_the_keys_of_the_events_it_deletes(org, app):
    storage.store_batch(
        app.pk, rows_of([make_event(user_id="client_gone"), make_event(user_id="client_stays")]), received_at=NOW
    )

    lifecycle.erase_user(org, user_id="client_gone", via="test")

    assert keys_match_events(app)
    assert EventKey.objects.filter(app=app).count() == 1


def test_deleting_an_apps_events_takes_every_key(app):
    storage.store_batch(app.pk, rows_of([make_event() for _ in range(7)]), received_at=NOW)

    assert storage.delete_app_events(app.pk, batch_size=3) == 7

    assert not EventKey.objects.filter(app=app).exists()
    assert snapshot(app) == ({}, set())


@pytest.mark.postgres
def test_a_dropped_partition_takes_its_keys_and_an_id_can_come_back(on_postgres, org, app):
    org.retention_days = 30
    org.save()
    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))
    old = make_event(timestamp="2020-03-05T10:00:00Z")
    storage.store_batch(app.pk, rows_of([old, make_event()]), received_at=NOW)

    assert partitions.drop_expired_partitions(now=datetime.now(UTC)) == ["telemetry_event_p20200301"]

    assert keys_match_events(app)
    # The event is gone with its key, so the same id sent again is a new event.
    again = same_id(old, timestamp=iso(NOW))
    assert storage.store_batch(app.pk, rows_of([again]), received_at=NOW) == 1
