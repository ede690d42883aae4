"""UserDay: one row per app, UTC day, user and (version, OS, OS version, arch,
CI) that has stored events, whichever path stored or deleted them
(docs/storage.md, Segments)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from telemetry import lifecycle, retention, storage
from telemetry.models import Event, UserDay
from tests.dashboard.conftest import NOW, sdk_event, store
from tests.factories import make_app
from tests.rollups.test_rollups import expected_user_days, user_days

DAY = timedelta(days=1)


def test_a_combination_is_written_once_per_day(app):
    store(app, sdk_event(NOW, user="a"), sdk_event(NOW, user="a"))  # twice in one batch
    store(app, sdk_event(NOW - timedelta(hours=1), user="a"))  # again in another batch
    store(
        app,
        sdk_event(NOW, user="a", version="1.3.0"),  # upgraded the same day: a second row
        sdk_event(NOW, user="a", ci=None),  # CI unknown is its own value
        sdk_event(NOW - DAY, user="a"),  # another day
        sdk_event(NOW, user="b", os="windows", arch=""),
    )

    today, yesterday = NOW.date(), (NOW - DAY).date()
    assert user_days(app) == {
        (today, "client_a", "1.2.0", "linux", "", "x86_64", "false"),
        (today, "client_a", "1.3.0", "linux", "", "x86_64", "false"),
        (today, "client_a", "1.2.0", "linux", "", "x86_64", ""),
        (yesterday, "client_a", "1.2.0", "linux", "", "x86_64", "false"),
        (today, "client_b", "1.2.0", "windows", "", "", "false"),
    }
    assert UserDay.objects.filter(app=app).count() == 5


def test_the_os_version_is_kept_and_days_are_utc(app):
    late = datetime(2026, 3, 9, 23, 59, 59, tzinfo=timezone.utc)
    event = sdk_event(late.astimezone(timezone(timedelta(hours=5))), user="a")
    event["environment"]["os_version"] = "6.1"
    store(app, event)

    assert user_days(app) == {(date(2026, 3, 9), "client_a", "1.2.0", "linux", "6.1", "x86_64", "false")}


def test_a_row_stays_while_one_event_of_its_combination_remains_that_day(app):
    store(app, sdk_event(NOW, user="a"), sdk_event(NOW - timedelta(hours=2), user="a"), sdk_event(NOW, user="a", version="1.3.0"))
    first, second, upgraded = Event.objects.filter(app=app).order_by("timestamp", "service_version")
    assert first.service_version == second.service_version == "1.2.0"

    storage.delete_events(app.pk, [first.pk])
    assert len(user_days(app)) == 2

    storage.delete_events(app.pk, [upgraded.pk])
    assert {row[2] for row in user_days(app)} == {"1.2.0"}

    storage.delete_events(app.pk, [second.pk])
    assert user_days(app) == set()


# Few values, so many events share a row and deletions often leave one behind.
small_events = st.builds(
    lambda hours, user, version, os, ci: sdk_event(NOW - timedelta(hours=hours), user=user, version=version, os=os, ci=ci),
    st.integers(0, 80), st.sampled_from("abc"), st.sampled_from(["1.2.0", "1.3.0"]), st.sampled_from(["linux", "macos"]),
    st.sampled_from([True, False, None]),
)  # fmt: skip


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(small_events, min_size=1, max_size=10), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_user_days_follow_the_events_through_stores_deletions_and_rebuilds(app, batches, seed):
    storage.delete_app_events(app.pk)
    chance = random.Random(seed)
    for batch in batches:
        store(app, *batch)
        pks = list(Event.objects.filter(app=app).values_list("pk", flat=True))
        storage.delete_events(app.pk, chance.sample(pks, chance.randint(0, len(pks))))
        assert user_days(app) == expected_user_days(app)

    incremental = user_days(app)
    storage.rebuild_derived(app.pk)
    assert user_days(app) == incremental


def test_retention_drops_the_rows_of_the_days_it_empties(app):
    app.organization.retention_days = 7
    app.organization.save()
    store(app, sdk_event(NOW - 9 * DAY, user="a"), sdk_event(NOW - 8 * DAY, user="b"), sdk_event(NOW, user="a"))

    retention.prune_app(app, now=NOW)

    assert user_days(app) == {(NOW.date(), "client_a", "1.2.0", "linux", "", "x86_64", "false")}


def test_erasure_drops_the_users_rows_in_every_app(app, org):
    other = make_app(org, name="other")[0]
    store(app, sdk_event(NOW, user="gone"), sdk_event(NOW - DAY, user="gone", version="1.3.0"), sdk_event(NOW, user="kept"))
    store(other, sdk_event(NOW, user="gone"))

    lifecycle.erase_user(org, user_id="client_gone", via="dashboard", batch_size=1)

    assert {row[1] for row in user_days(app)} == {"client_kept"}
    assert user_days(other) == set()


def test_deleting_an_apps_events_drops_its_rows_only(app, org):
    other = make_app(org, name="other")[0]
    store(app, sdk_event(NOW, user="a"))
    store(other, sdk_event(NOW, user="a"))

    storage.delete_app_events(app.pk)

    assert user_days(app) == set()
    assert len(user_days(other)) == 1


def test_a_deletion_through_a_day_of_many_users_drops_each_row(app):
    """More rows than SQLite's expression depth (1,000) in one retention batch."""
    for start in range(0, 1100, 550):
        store(app, *[sdk_event(NOW, user=str(i), version=f"1.{i % 3}") for i in range(start, start + 550)])
    keep = Event.objects.filter(app=app, user_id="client_7").values_list("pk", flat=True)
    doomed = Event.objects.filter(app=app).exclude(pk__in=list(keep)).values_list("pk", flat=True)

    assert storage.delete_events(app.pk, list(doomed)) == 1099

    assert user_days(app) == {(NOW.date(), "client_7", "1.1", "linux", "", "x86_64", "false")}
