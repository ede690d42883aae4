"""The rollups stay exactly in step with stored events, whichever path changed them."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import call_command
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from organizations.services import create_app
from telemetry import ingest, rollups, storage
from telemetry.models import DailyActor, Event, HourlyCounts, HourlyRollup, RollupDelta, UserDay
from tests.factories import iso, make_event
from tests.rollups import strategies

NOW = datetime.now(timezone.utc).replace(microsecond=0)


COUNTS = ("events", "succeeded", "failed", "timed", "duration_ms_sum")


def snapshot(app) -> tuple[dict, set]:
    """The app's hourly figures as every read sees them (folded or not), and its daily actors."""
    sums = HourlyCounts.objects.filter(app=app).values("hour", "dimension", "value").annotate(
        **{f"sum_{name}": Sum(name) for name in COUNTS}
    )
    rows = {
        (r["hour"], r["dimension"], r["value"]): tuple(r[f"sum_{name}"] for name in COUNTS)
        for r in sums
        if r["sum_events"]
    }
    actors = set(DailyActor.objects.filter(app=app).values_list("day", "kind", "actor"))
    return rows, actors


STORED = ("timestamp", "event_type", "category", "os", "os_version", "arch", "service_version", "ci", "data")


def facts_of(rows) -> dict:
    """{(hour, dimension, value): counts} of event field dicts, by event_facts."""
    deltas = rollups.new_deltas()
    for row in rows:
        rollups.add_deltas(deltas, rollups.event_facts(**row))
    return {key: tuple(counts) for key, counts in deltas.items() if counts[0]}


def python_rows(app) -> dict:
    """What event_facts makes of the app's events as the database gives them back."""
    stored = Event.objects.filter(app=app).values_list(*STORED)
    return facts_of(dict(zip(STORED, row)) for row in stored)


def ingest_rows(rows: list[dict]) -> dict:
    """What event_facts makes of validated rows, with their data as ingest parsed it."""
    return facts_of({**{name: row[name] for name in STORED if name != "data"}, "data": row["data_value"]} for row in rows)


def user_days(app) -> set:
    """The app's UserDay rows as (day, user, version, os, os version, arch, ci)."""
    return set(UserDay.objects.filter(app=app).values_list("day", *storage.USER_DAY_COLUMNS, "ci"))


def expected_user_days(app) -> set:
    """The UserDay rows the app's stored events call for."""
    return {
        (timestamp.astimezone(timezone.utc).date(), user, version, os, os_version, arch, rollups.ci_text(ci))
        for timestamp, user, version, os, os_version, arch, ci in Event.objects.filter(app=app).values_list(
            "timestamp", *storage.USER_DAY_COLUMNS, "ci"
        )
    }


def store(app, events, *, now=None) -> int:
    now = now or datetime.now(timezone.utc)
    batch = ingest.validate_events(events, now=now)
    assert not batch.errors, batch.errors
    return storage.store_batch(app.pk, batch.rows, received_at=now)


def command(name="build", *, success=True, duration=1234, at=NOW, user="client_a", session="sess_1", **data):
    event = make_event(timestamp=iso(at), user_id=user, session_id=session)
    event["event"]["data"] = {"command": name, "success": success, "duration_ms": duration, **data}
    return event


def assert_rebuild_matches(app):
    incremental = snapshot(app), user_days(app)
    # What ingest wrote (SQL on PostgreSQL) is what event_facts, which deletions use, makes of the stored events.
    assert incremental[0][0] == python_rows(app)
    assert incremental[1] == expected_user_days(app)
    storage.fold_rollup_deltas()
    assert (snapshot(app), user_days(app)) == incremental  # folding moves counts, it never changes them
    assert not HourlyRollup.objects.filter(app=app, events=0).exists()
    storage.rebuild_derived(app.pk)
    assert (snapshot(app), user_days(app)) == incremental


def test_ingest_counts_each_event_in_every_dimension(app):
    feature = make_event(timestamp=iso(NOW))
    feature["event"] = {"type": "feature_used", "data": {"feature": "export"}}
    store(app, [command(), command(success=False, duration=10), feature])
    hour = NOW.replace(minute=0, second=0)

    rows, actors = snapshot(app)
    assert rows[(hour, "total", "")] == (3, 1, 1, 2, 1244)
    assert rows[(hour, "type", "command_execution")] == (2, 1, 1, 2, 1244)
    assert rows[(hour, "type", "feature_used")] == (1, 0, 0, 0, 0)
    assert rows[(hour, "os", "linux")][0] == 3
    assert rows[(hour, "ci", "false")][0] == 3
    assert rows[(hour, "command", "build")] == (2, 1, 1, 2, 1244)
    buckets = {value: counts[0] for (_h, dimension, value), counts in rows.items() if dimension == "duration"}
    assert buckets == {str(rollups.duration_bucket(1234)): 1, str(rollups.duration_bucket(10)): 1}
    assert {(kind, actor) for _day, kind, actor in actors} >= {("u", "client_a"), ("s", "sess_1")}


def test_a_retried_batch_is_not_counted_twice(app):
    events = [command(), command(name="test")]
    store(app, events)
    before = snapshot(app)

    assert store(app, events) == 0
    assert snapshot(app) == before


def test_rebuild_equals_incremental_on_a_mixed_history(app):
    history = []
    for i in range(60):
        at = NOW - timedelta(hours=i * 7, minutes=i)
        history.append(command(name=f"cmd{i % 4}", success=[True, False, None][i % 3], duration=[5, 0, 99.9, "x"][i % 4],
                               at=at, user=f"client_{i % 5}", session=f"sess_{i % 9}"))
        plain = make_event(timestamp=iso(at), user_id=f"client_{i % 3}", session_id=None)
        plain["event"]["type"] = ["feature_used", "error"][i % 2]
        plain["environment"]["ci"] = [True, None][i % 2]
        history.append(plain)
    for start in range(0, len(history), 25):
        store(app, history[start:start + 25])
    store(app, history[:10])  # a retry in the middle of the history

    assert Event.objects.for_app(app).count() == 120
    assert_rebuild_matches(app)


def test_deleting_events_subtracts_exactly_what_was_removed(app):
    old = [command(at=NOW - timedelta(days=3), user="client_old", session="sess_old") for _ in range(3)]
    mixed_day = [command(at=NOW - timedelta(days=1), user=u, session=u.replace("client", "sess")) for u in ("client_x", "client_y")]
    store(app, old + mixed_day + [command()])

    doomed = Event.objects.filter(app=app, user_id__in=["client_old", "client_x"]).values_list("pk", flat=True)
    assert storage.delete_events(app.pk, list(doomed)) == 4

    rows, actors = snapshot(app)
    storage.rebuild_derived(app.pk)
    assert (rows, actors) == snapshot(app)
    assert not any(actor in ("client_old", "client_x") for _day, _kind, actor in actors)
    assert any(actor == "client_y" for _day, _kind, actor in actors)


def test_a_user_keeps_the_day_while_one_of_their_events_remains(app):
    store(app, [command(user="client_k"), command(user="client_k")])
    first = Event.objects.filter(app=app).order_by("pk").first()

    storage.delete_events(app.pk, [first.pk])

    assert DailyActor.objects.filter(app=app, kind="u", actor="client_k").exists()


def test_rebuild_rollups_command_rebuilds_every_app(app, org):
    other, _ = create_app(organization=org, name="other")
    store(app, [command()])
    store(other, [command(), command()])
    RollupDelta.objects.all().delete()
    HourlyRollup.objects.all().delete()

    out = io.StringIO()
    call_command("rebuild_rollups", stdout=out)

    assert f"{app.public_id}: rebuilt" in out.getvalue()
    assert sum(HourlyRollup.objects.filter(dimension="total").values_list("events", flat=True)) == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_rebuild_rollups_vacuums_the_delta_table_it_filled_on_postgresql(on_postgres, org):
    from django.db import connection

    app, _ = create_app(organization=org, name="vacuumed")
    store(app, [command(), command()])

    def vacuums() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT vacuum_count + autovacuum_count FROM pg_stat_user_tables WHERE relname = %s",
                [RollupDelta._meta.db_table],
            )
            return cursor.fetchone()[0]

    before = vacuums()
    call_command("rebuild_rollups", app.public_id, stdout=io.StringIO())

    assert vacuums() > before
    assert sum(HourlyRollup.objects.filter(app=app, dimension="total").values_list("events", flat=True)) == 2


# Values a JSON parse can give the ingest path: orjson reads integers from i64 to
# u64, and refuses lone surrogates and (in validation) NUL characters.
json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats(
    allow_nan=False, allow_infinity=False
) | st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=5)


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.fixed_dictionaries(
            {"success": json_scalars, "duration_ms": json_scalars},
            optional={
                "command": json_scalars | st.text("ab", min_size=190, max_size=210) | strategies.commands,
                "exit_code": strategies.exit_codes,
                "flags": strategies.flags,
            },
        ),
        min_size=1,
        max_size=8,
    ),
    environments=st.lists(
        st.fixed_dictionaries(
            {
                "os": strategies.field(100, ["linux"]),
                "os_version": strategies.field(100, ["6.1"]),
                "arch": strategies.field(100, ["x86_64"]),
            }
        ),
        min_size=1,
        max_size=3,
    ),
    version=strategies.field(100, ["1.2.0"]).filter(bool),
    event_type=st.sampled_from(["command_execution", "other"]),
)
def test_python_and_sql_agree_on_any_event_data(app, values, environments, version, event_type):
    """The incremental path (SQL on PostgreSQL, Python elsewhere), event_facts
    over the stored events, and the rebuild agree."""
    events = []
    for index, data in enumerate(values):
        event = make_event()
        event["event"]["type"] = event_type
        event["event"]["data"] = data
        event["environment"].update(environments[index % len(environments)])
        event["service"]["version"] = version
        events.append(event)
    storage.delete_app_events(app.pk)
    DailyActor.objects.filter(app=app).delete()
    store(app, events)

    assert_rebuild_matches(app)
