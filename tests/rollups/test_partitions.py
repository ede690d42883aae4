"""Time partitions of the events table on PostgreSQL (telemetry.partitions)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry import partitions, sketches, storage
from telemetry.models import DailyActor, DailySketch, Event, EventKey, HourlyCounts, HourlyRollup, UserDay
from tests.factories import iso, make_app, make_event
from tests.rollups.test_rollups import snapshot, store, user_days

pytestmark = pytest.mark.postgres
UTC = timezone.utc


def partition_of(event_pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM telemetry_event WHERE id = %s", [event_pk])
        return cursor.fetchone()[0]


def at(year, month, day, hour=12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_the_events_table_is_partitioned_by_month(on_postgres, db):
    assert partitions.is_partitioned()
    current = partitions.interval_bounds(datetime.now(UTC).date())[0]
    names = [p.name for p in partitions.existing_partitions()]
    assert partitions.partition_name(current) in names
    assert len(names) >= 4  # the current month and three ahead


def test_an_event_without_a_partition_lands_in_the_default_one_and_moves_when_it_is_made(on_postgres, app):
    store(app, [make_event(timestamp=iso(at(2020, 3, 5)))], now=datetime.now(UTC))
    event = Event.objects.get(app=app)
    assert partition_of(event.pk) == "telemetry_event_default"

    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))

    assert partition_of(event.pk) == "telemetry_event_p20200301"
    assert Event.objects.filter(app=app).count() == 1


def test_ensure_partitions_creates_the_coming_intervals_once(on_postgres, db):
    now = datetime(2031, 5, 17, tzinfo=UTC)

    created = partitions.ensure_partitions(now=now, ahead=2)
    again = partitions.ensure_partitions(now=now, ahead=2)

    assert created == ["telemetry_event_p20310501", "telemetry_event_p20310601", "telemetry_event_p20310701"]
    assert again == []


def test_a_retried_batch_is_still_stored_once(on_postgres, signed_post, app):
    body = {"events": [make_event(), make_event()]}

    signed_post(app, body)
    response = signed_post(app, body)

    assert response.json()["duplicates"] == 2
    assert Event.objects.filter(app=app).count() == 2


def test_a_partition_past_every_apps_retention_is_dropped_and_the_rollups_follow(on_postgres, app, org):
    other, _ = make_app(org, name="other")
    org.retention_days = 30
    org.save()
    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))
    store(app, [make_event(timestamp=iso(at(2020, 3, 5))), make_event(timestamp=iso(datetime.now(UTC)))])
    store(other, [make_event(timestamp=iso(at(2020, 3, 9)))])
    sketches.refresh(app.pk)
    sketches.refresh(other.pk)
    assert UserDay.objects.filter(day__lt=date(2020, 4, 1)).count() == 2

    dropped = partitions.drop_expired_partitions(now=datetime.now(UTC))

    assert "telemetry_event_p20200301" in dropped
    assert Event.objects.count() == 1
    assert not HourlyCounts.objects.filter(hour__lt=at(2020, 4, 1)).exists()
    assert not EventKey.objects.filter(timestamp__lt=at(2020, 4, 1)).exists()
    assert not DailyActor.objects.filter(day__lt=date(2020, 4, 1)).exists()
    assert not DailySketch.objects.filter(day__lt=date(2020, 4, 1)).exists()
    assert DailySketch.objects.filter(app=app).exists()  # today's stays
    assert not UserDay.objects.filter(day__lt=date(2020, 4, 1)).exists()
    assert list(UserDay.objects.filter(app=app).values_list("day", flat=True)) == [datetime.now(UTC).date()]
    assert not UserDay.objects.filter(app=other).exists()
    before = snapshot(app), user_days(app)
    storage.rebuild_derived(app.pk)
    assert (snapshot(app), user_days(app)) == before


def test_a_partition_is_kept_while_one_app_keeps_its_events(on_postgres, app, org):
    keeper, _ = make_app(org, name="keeper")
    keeper.retention_override, keeper.retention_days = True, None  # keep forever
    keeper.save()
    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))
    store(app, [make_event(timestamp=iso(at(2020, 3, 5)))])
    store(keeper, [make_event(timestamp=iso(at(2020, 3, 6)))])

    assert partitions.drop_expired_partitions(now=datetime.now(UTC)) == []
    assert Event.objects.count() == 2


def test_purge_events_drops_whole_partitions_then_deletes_rows(on_postgres, app, org):
    org.retention_days = 7
    org.save()
    partitions._create_partition(date(2020, 3, 1), date(2020, 4, 1))
    store(app, [make_event(timestamp=iso(at(2020, 3, 5))), make_event(timestamp=iso(datetime.now(UTC) - timedelta(days=8)))])

    out = io.StringIO()
    call_command("purge_events", stdout=out)

    assert "dropped partition telemetry_event_p20200301" in out.getvalue()
    assert Event.objects.count() == 0
    assert snapshot(app)[0] == {}
    storage.fold_rollup_deltas()
    assert not HourlyRollup.objects.filter(app=app).exists()


def test_create_partitions_command_reports_what_it_made(on_postgres, db):
    out = io.StringIO()
    call_command("create_partitions", "--ahead", "5", stdout=out)

    assert "partitions, up to" in out.getvalue()
