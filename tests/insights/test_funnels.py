"""Funnels (docs/insights.md, Funnels): figures against a brute force over the raw
events, on random event sequences; who may read and change funnels; the form."""

from __future__ import annotations

import re
import statistics
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import pytest
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dashboard import funnels
from dashboard.filters import Filters
from dashboard.funnels import Step
from dashboard.models import Funnel
from organizations.models import AuditEntry
from telemetry import storage
from telemetry.databases import events_connection
from telemetry.models import STEP_NAME_SQL, Event
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_app

UTC = timezone.utc
START = datetime(2026, 3, 2, tzinfo=UTC)
END = datetime(2026, 3, 4, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Far enough after every generated event that ingest takes them all, and their days are closed.
LATER = datetime(2026, 4, 10, tzinfo=UTC)


# --- The brute force ---------------------------------------------------------------------------


def _name(event: Event) -> str | None:
    key = {"command_execution": "command", "feature_used": "feature"}.get(event.event_type)
    value = event.data.get(key) if key and isinstance(event.data, dict) else None
    return value if isinstance(value, str) else None


def _passes(event: Event, filters: Filters) -> bool:
    return (
        (filters.version is None or event.service_version == filters.version)
        and (filters.os is None or event.os == filters.os)
        and (filters.arch is None or event.arch == filters.arch)
        and (filters.ci is None or event.ci == filters.ci)
    )


def _is_step(event: Event, step: Step) -> bool:
    return event.event_type == step.type and (not step.name or _name(event) == step.name)


def brute_force(app, steps: list[Step], *, window, start, end, filters=Filters()):
    """(users per step, median microseconds since the previous step per step), read from
    every raw event of the app and taken from the definition's other reading: step k is
    reached when some events e1..ek, e1 the user's first step-1 event in the range, are
    steps 1..k in order (each at or after the one before, strictly after when its step
    could match an earlier step's event) before t(e1) + window; t(k) is the earliest such
    ek. Every sequence is tried."""
    by_user: dict[str, list[Event]] = {}
    for event in Event.objects.filter(app=app):
        if _passes(event, filters):
            by_user.setdefault(event.user_id, []).append(event)
    strict = [any(s.type == e.type and (not s.name or not e.name or s.name == e.name) for e in steps[:k]) for k, s in enumerate(steps)]
    users, gaps = [0] * len(steps), [[] for _ in steps]
    for events in by_user.values():
        entries = [e.timestamp for e in events if _is_step(e, steps[0]) and start <= e.timestamp < end]
        if not entries:
            continue
        t1 = min(entries)
        deadline = t1 + window

        @lru_cache(maxsize=None)
        def earliest(k: int):
            """The earliest time an event can be step k of a valid sequence (None: none can)."""
            if k == 0:
                return t1
            best = None
            for event in events:
                if not _is_step(event, steps[k]) or event.timestamp >= deadline:
                    continue
                # Some sequence for steps 1..k-1 ends at or before this event, as the rule needs.
                if _sequence_ends_by(k - 1, event.timestamp, strict[k]):
                    best = event.timestamp if best is None else min(best, event.timestamp)
            return best

        @lru_cache(maxsize=None)
        def _sequence_ends_by(k: int, moment, strictly: bool) -> bool:
            """Whether some valid sequence for steps 1..k+1 has its last event before (or at) `moment`."""
            if k == 0:
                return t1 < moment if strictly else t1 <= moment
            for event in events:
                if not _is_step(event, steps[k]) or event.timestamp >= deadline:
                    continue
                if (event.timestamp < moment if strictly else event.timestamp <= moment) and _sequence_ends_by(
                    k - 1, event.timestamp, strict[k]
                ):
                    return True
            return False

        times = []
        for k in range(len(steps)):
            moment = earliest(k)
            if moment is None:
                break
            times.append(moment)
        for k, moment in enumerate(times):
            users[k] += 1
            if k:
                gaps[k].append((moment - times[k - 1]) // timedelta(microseconds=1))
    return users, [float(statistics.median(g)) if g else None for g in gaps]


def figures(result: funnels.FunnelResult):
    medians = [None if row.median_seconds is None else round(row.median_seconds * 1e6, 3) for row in result.steps]
    return [row.users for row in result.steps], medians


def expected(app, steps, **kwargs):
    users, medians = brute_force(app, steps, **kwargs)
    return users, [None if m is None else round(m, 3) for m in medians]


# --- Random event sequences --------------------------------------------------------------------

KINDS = [
    ("command_execution", {"command": "init"}),
    ("command_execution", {"command": "build"}),
    ("command_execution", {"command": "deploy"}),
    ("command_execution", {"command": 5}),  # not a string: no named step matches it
    ("feature_used", {"feature": "cache"}),
    ("feature_used", {"feature": "build"}),  # a feature named like a command
    ("error", {"error_kind": "io"}),
]
STEP_POOL = [
    Step("command_execution", "init"),
    Step("command_execution", "build"),
    Step("command_execution", "deploy"),
    Step("command_execution"),
    Step("feature_used", "cache"),
    Step("feature_used", "build"),
    Step("error"),
]
# Each user's events sit around an anchor: near the range's start and end,
# or inside it. Their offsets from it make ties (the same instant, a
# microsecond or a second apart) and window edges (a window, and a
# microsecond either side of it), and the events are mostly of the steps'
# kinds, so users go deep into the funnel, out of order, repeating steps.
ANCHORS = [START - HOUR, START - timedelta(microseconds=1), START, START + timedelta(hours=5), START + timedelta(days=1),
           START + timedelta(days=1, hours=7), END - 2 * HOUR, END - timedelta(microseconds=1), END]  # fmt: skip
WINDOWS = [HOUR, 3 * HOUR, timedelta(days=1)]
NUDGES = [timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1), timedelta(seconds=1)]
BASE_OFFSETS = [timedelta(0), timedelta(minutes=10), timedelta(minutes=30), HOUR, 2 * HOUR, 3 * HOUR, timedelta(days=1), -HOUR]
GAPS = [timedelta(0), timedelta(microseconds=1), timedelta(seconds=1), timedelta(minutes=20), HOUR - timedelta(microseconds=1),
        HOUR, HOUR + timedelta(microseconds=1), 2 * HOUR, -timedelta(seconds=1)]  # fmt: skip
NOWS = [LATER, START + timedelta(days=1, hours=9), END + timedelta(hours=2), START - timedelta(days=3)]
FILTER_CHOICES = [Filters(), Filters(), Filters(), Filters(os="linux"), Filters(ci=True), Filters(os="windows", ci=False)]


def _kinds_of(step: Step) -> list[int]:
    return [i for i, (event_type, data) in enumerate(KINDS) if step.type == event_type and (
        not step.name or data.get("command", data.get("feature")) == step.name)]  # fmt: skip


@st.composite
def scenarios(draw):
    steps = draw(st.lists(st.sampled_from(STEP_POOL), min_size=2, max_size=4))
    likely = sorted({kind for step in steps for kind in _kinds_of(step)})
    kind = st.one_of(st.sampled_from(likely), st.sampled_from(likely), st.integers(min_value=0, max_value=len(KINDS) - 1))
    offset = st.builds(lambda base, nudge: base + nudge, st.sampled_from(BASE_OFFSETS), st.sampled_from(NUDGES))
    users = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        anchor = draw(st.sampled_from(ANCHORS))
        # A user's platform is mostly one (the filters then keep or drop whole users), sometimes mixed.
        os, ci = draw(st.sampled_from(["linux", "windows"])), draw(st.sampled_from([False, True, None]))
        platform = st.sampled_from([(os, ci), (os, ci), (os, ci), ("windows", False), ("linux", True)])
        events = draw(st.lists(st.tuples(offset, kind, platform), max_size=6))
        # Most users also walk the steps in order, from their anchor, with gaps
        # that land on, just before and just after the window's end.
        moment = timedelta(0)
        for step in steps:
            if draw(st.sampled_from([True, True, True, False])):
                events.append((moment, draw(st.sampled_from(_kinds_of(step))), draw(platform)))
            moment += draw(st.sampled_from(GAPS))
        users.append([(anchor + delta, k, os, ci) for delta, k, (os, ci) in events])
    return {
        "users": users,
        "steps": steps,
        "window": draw(st.sampled_from(WINDOWS)),
        "filters": draw(st.sampled_from(FILTER_CHOICES)),
        # When it is computed: after everything, or on a day inside the range (its
        # entries before the split cached, the rest read), or before the range.
        "now": draw(st.sampled_from(NOWS)),
    }


def seed(app, users) -> None:
    events = []
    for u, timeline in enumerate(users):
        for moment, kind, os, *ci in timeline:
            event_type, data = KINDS[kind]
            events.append(sdk_event(moment, user=f"u{u}", type=event_type, data=dict(data), os=os, ci=ci[0] if ci else False))
    if events:
        store(app, *events, now=LATER)


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_every_step_and_median_matches_the_brute_force(org, scenario):
    app, _ = make_app(org, name="funnel-" + uuid.uuid4().hex[:12])
    seed(app, scenario["users"])
    steps, window, filters = scenario["steps"], scenario["window"], scenario["filters"]

    truth = expected(app, steps, window=window, start=START, end=END, filters=filters)

    # However much of the range is closed (its early entries cached, the later read
    # each time), the figures are the same, the first view and the next.
    for _ in range(2):
        result = funnels.compute(app.pk, steps, window=window, start=START, end=END, filters=filters, now=scenario["now"])
        assert figures(result) == truth
    reached = [row.users for row in result.steps]
    event(f"entered: {min(reached[0], 2)}+, deepest step reached: {max(k + 1 for k, n in enumerate(reached) if n or k == 0)}")
    # The Python walk (SQLite's path) agrees too, on PostgreSQL as well.
    walked = funnels._reached_python(app.pk, steps, window, START, END, filters)
    assert (walked.users, [None if m is None else round(m, 3) for m in walked.medians()]) == truth


def test_a_worked_example_by_hand(app):
    init, build, deploy = Step("command_execution", "init"), Step("command_execution", "build"), Step("command_execution", "deploy")
    t = START + timedelta(hours=10)
    seed(
        app,
        [
            # a: init, build 10 min later, deploy 20 min after that.
            [(t, 0, "linux"), (t + timedelta(minutes=10), 1, "linux"), (t + timedelta(minutes=30), 2, "linux")],
            # b: build before init does not count; build 50 min after init; deploy past the hour.
            [(t - HOUR, 1, "linux"), (t, 0, "linux"), (t + timedelta(minutes=50), 1, "linux"), (t + timedelta(minutes=61), 2, "linux")],
            # c: enters on the first of two inits; build at the same instant counts.
            [(t + HOUR, 0, "linux"), (t + 2 * HOUR, 0, "linux"), (t + HOUR, 1, "linux")],
            # d: init just past the range's end never enters.
            [(END, 0, "linux"), (END + timedelta(minutes=1), 1, "linux")],
            # e: enters on the range's last microsecond, builds after the range.
            [(END - timedelta(microseconds=1), 0, "linux"), (END + timedelta(minutes=5), 1, "linux")],
        ],
    )
    result = funnels.compute(app.pk, [init, build, deploy], window=HOUR, start=START, end=END, now=LATER)

    assert [row.users for row in result.steps] == [4, 4, 1]
    # Gaps init → build: 10 min, 50 min, 0, 5 min + 1 µs: the mean of the middle two.
    assert result.steps[1].median_seconds == 450.0000005
    assert result.steps[2].median_seconds == 1200.0
    assert result.steps[1].from_first == 1.0 and result.steps[2].from_previous == 0.25


def test_repeated_steps_need_a_later_event(app):
    build = Step("command_execution", "build")
    t = START + timedelta(hours=3)
    seed(app, [[(t, 1, "linux")], [(t, 1, "linux"), (t, 1, "linux")], [(t, 1, "linux"), (t + timedelta(seconds=1), 1, "linux")]])

    result = funnels.compute(app.pk, [build, build], window=HOUR, start=START, end=END, now=LATER)

    # Two builds at one instant are not "build, then build"; one a second later is.
    assert [row.users for row in result.steps] == [3, 1]
    assert result.steps[1].median_seconds == 1.0


def test_filters_apply_to_every_step(app):
    init, build = Step("command_execution", "init"), Step("command_execution", "build")
    t = START + timedelta(hours=3)
    seed(app, [[(t, 0, "linux"), (t + timedelta(minutes=1), 1, "windows")], [(t, 0, "linux"), (t + timedelta(minutes=1), 1, "linux")]])

    everyone = funnels.compute(app.pk, [init, build], window=HOUR, start=START, end=END, now=LATER)
    on_linux = funnels.compute(app.pk, [init, build], window=HOUR, start=START, end=END, filters=Filters(os="linux"), now=LATER)

    assert [row.users for row in everyone.steps] == [2, 2]
    assert [row.users for row in on_linux.steps] == [2, 1]


# --- The cache -----------------------------------------------------------------------------------


def _reads_events(queries) -> bool:
    return any(Event._meta.db_table in query["sql"] for query in queries)


def test_a_result_of_closed_days_is_cached_until_those_days_change(app):
    init, build = Step("command_execution", "init"), Step("command_execution", "build")
    t = START + timedelta(hours=3)
    seed(app, [[(t, 0, "linux"), (t + timedelta(minutes=1), 1, "linux")], [(t, 0, "linux")]])

    def compute():
        with CaptureQueriesContext(events_connection) as queries:
            result = funnels.compute(app.pk, [init, build], window=HOUR, start=START, end=END, now=LATER)
        return [row.users for row in result.steps], _reads_events(queries)

    assert compute() == ([2, 1], True)
    assert compute() == ([2, 1], False)  # from the cache

    # A late event inside the window: read again.
    store(app, sdk_event(t + timedelta(minutes=30), user="u1", data={"command": "build"}), now=LATER)
    assert compute() == ([2, 2], True)
    assert compute() == ([2, 2], False)

    # A deletion (erasure, retention): read again.
    first_build = Event.objects.filter(app=app, user_id="client_u0", data__command="build").get()
    storage.delete_events(app.pk, [first_build.pk])
    assert compute() == ([2, 1], True)


def test_a_result_that_reads_the_current_day_is_never_cached(app):
    init, build = Step("command_execution", "init"), Step("command_execution", "build")
    t = END - timedelta(minutes=10)
    seed(app, [[(t, 0, "linux")]])
    now = END + timedelta(minutes=20)  # the window (1 hour) reaches past now: the current day

    def users():
        with CaptureQueriesContext(events_connection) as queries:
            result = funnels.compute(app.pk, [init, build], window=HOUR, start=START, end=END, now=now)
        assert _reads_events(queries)
        return [row.users for row in result.steps]

    assert users() == [1, 0]
    store(app, sdk_event(t + timedelta(minutes=15), user="u0", data={"command": "build"}), now=now)
    assert users() == [1, 1]


# --- PostgreSQL: the index ----------------------------------------------------------------------


def test_the_step_name_expression_is_the_one_migration_0014_indexes():
    from importlib import import_module

    migration = import_module("telemetry.migrations.0014_event_funnel_step_index")
    assert migration.STEP_NAME_SQL == STEP_NAME_SQL


@pytest.mark.postgres
def test_step_one_and_the_probes_read_the_funnel_index(on_postgres, app):
    t = START + timedelta(hours=3)
    seed(app, [[(t, 0, "linux"), (t + timedelta(minutes=1), 1, "linux")]])
    steps = [Step("command_execution", "init"), Step("command_execution", "build")]
    captured = []

    def explain(execute, sql, params, many, context):
        if sql.startswith("WITH s1"):
            with events_connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show its index choice
                cursor.execute("EXPLAIN " + sql, params)
                captured.append("\n".join(row[0] for row in cursor.fetchall()))
        return execute(sql, params, many, context)

    with events_connection.cursor() as cursor:
        # The index of each time partition belongs to event_funnel_step.
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'event_funnel_step'::regclass")
        names = [row[0] for row in cursor.fetchall()]
    with events_connection.execute_wrapper(explain):
        funnels.compute(app.pk, steps, window=HOUR, start=START, end=END, now=END)
    first_step, probe = captured[0].split("Limit", 1)
    assert names and any(name in first_step for name in names), captured[0]
    assert any(name in probe for name in names), captured[0]


@pytest.mark.postgres
def test_every_time_partition_has_the_index_even_one_made_later(on_postgres, app):
    from telemetry import partitions

    store(app, sdk_event(datetime(2031, 5, 3, tzinfo=UTC), data={"command": "init"}), now=datetime(2031, 5, 3, tzinfo=UTC))
    created = partitions.ensure_partitions(now=datetime(2031, 5, 1, tzinfo=UTC), ahead=0)  # moves that event in

    with events_connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry_event'::regclass "
            "AND inhrelid NOT IN (SELECT x.indrelid FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid "
            "WHERE i.inhparent = 'event_funnel_step'::regclass AND x.indisvalid)"
        )
        without = cursor.fetchone()[0]
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'event_funnel_step'::regclass")
        valid = cursor.fetchone()[0]
    assert created and without == 0 and valid
    result = funnels.compute(app.pk, [Step("command_execution", "init"), Step("command_execution", "build")],
                             window=HOUR, start=datetime(2031, 5, 1, tzinfo=UTC), end=datetime(2031, 5, 4, tzinfo=UTC))  # fmt: skip
    assert result.entered == 1


# --- Pages and rights ----------------------------------------------------------------------------


@pytest.fixture
def funnel(app, alice):
    return funnels.create_funnel(
        app, name="Onboarding", steps=[Step("command_execution", "init"), Step("command_execution", "build")], window_seconds=3600, by=alice
    )


def url(name, app, **kwargs):
    return reverse(f"dashboard:{name}", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id, **kwargs})


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def new_funnel_data(**overrides):
    data = {"name": "Ship it", "window": "86400", "step_1_type": "command_execution", "step_1_name": "init",
            "step_2_type": "command_execution", "step_2_name": "deploy"}  # fmt: skip
    data.update(overrides)
    return data


def test_a_viewer_reads_funnels_and_their_figures(app, bob, funnel):
    now = datetime.now(UTC).replace(microsecond=0)
    store(app, sdk_event(now - timedelta(hours=3), user="x", data={"command": "init"}),
          sdk_event(now - timedelta(hours=2, minutes=30), user="x", data={"command": "build"}),
          sdk_event(now - timedelta(hours=3), user="y", data={"command": "init"}), now=now)  # fmt: skip
    client = signed_in(bob)

    listing = client.get(url("funnels", app))
    detail = client.get(url("funnel_detail", app, funnel_id=funnel.pk), {"range": "7d"})

    assert listing.status_code == 200 and "Onboarding" in listing.text
    assert "New funnel" not in listing.text and "Edit" not in listing.text
    assert detail.status_code == 200
    rows = re.findall(r'data-label="Users">(\d+)<', detail.text)
    assert rows == ["2", "1"]
    assert "30 min" in detail.text and "50%" in detail.text
    assert "What these figures mean" in detail.text and "UTC" in detail.text
    assert 'class="filter-bar"' in detail.text


def test_the_detail_page_honours_the_filters_and_survives_a_bad_range(app, bob, funnel):
    now = datetime.now(UTC).replace(microsecond=0)
    store(app, sdk_event(now - timedelta(hours=3), user="x", os="windows", data={"command": "init"}), now=now)
    client = signed_in(bob)

    windows = client.get(url("funnel_detail", app, funnel_id=funnel.pk), {"os": "windows"})
    linux = client.get(url("funnel_detail", app, funnel_id=funnel.pk), {"os": "linux"})
    bad = client.get(url("funnel_detail", app, funnel_id=funnel.pk), {"range": "custom", "start": "2026-02-30", "end": "x"})

    assert re.findall(r'data-label="Users">(\d+)<', windows.text) == ["1", "0"]
    assert re.findall(r'data-label="Users">(\d+)<', linux.text) == ["0", "0"]
    assert bad.status_code == 200 and "Showing the default range instead." in bad.text


def test_a_viewer_cannot_create_edit_or_delete(app, bob, funnel):
    client = signed_in(bob)
    for name, kwargs in (("funnel_new", {}), ("funnel_edit", {"funnel_id": funnel.pk}), ("funnel_delete", {"funnel_id": funnel.pk})):
        assert client.get(url(name, app, **kwargs)).status_code == 403
        assert client.post(url(name, app, **kwargs), new_funnel_data()).status_code == 403
    funnel.refresh_from_db()
    assert funnel.name == "Onboarding"
    assert Funnel.objects.filter(app=app).count() == 1


def test_an_outsider_gets_404_everywhere(app, charlie, funnel):
    client = signed_in(charlie)
    for name, kwargs in (
        ("funnels", {}), ("funnel_detail", {"funnel_id": funnel.pk}), ("funnel_new", {}),
        ("funnel_edit", {"funnel_id": funnel.pk}), ("funnel_delete", {"funnel_id": funnel.pk}),
    ):  # fmt: skip
        assert client.get(url(name, app, **kwargs)).status_code == 404
        if name not in ("funnels", "funnel_detail"):  # read-only pages answer a POST with 405 first
            assert client.post(url(name, app, **kwargs), new_funnel_data()).status_code == 404
    assert Funnel.objects.filter(pk=funnel.pk).exists()


def test_a_funnel_is_found_only_under_its_own_app(org, app, alice, funnel):
    other, _ = make_app(org, name="other-cli")
    client = signed_in(alice)
    assert client.get(url("funnel_detail", other, funnel_id=funnel.pk)).status_code == 404
    assert client.post(url("funnel_delete", other, funnel_id=funnel.pk)).status_code == 404
    assert Funnel.objects.filter(pk=funnel.pk).exists()


def test_an_admin_creates_edits_and_deletes_with_an_audit_trail(app, alice):
    client = signed_in(alice)

    created = client.post(url("funnel_new", app), new_funnel_data())
    funnel = Funnel.objects.get(app=app)
    assert created.status_code == 302 and created["Location"] == url("funnel_detail", app, funnel_id=funnel.pk)
    assert funnel.steps == [{"type": "command_execution", "name": "init"}, {"type": "command_execution", "name": "deploy"}]
    assert funnel.window_seconds == 86400 and funnel.created_by == alice

    edited = client.post(url("funnel_edit", app, funnel_id=funnel.pk), new_funnel_data(
        name="Ship it fast", window="3600", step_2_name="", step_2_type="", step_4_type="error",
        step_3_type="feature_used", step_3_name="cache"))  # fmt: skip
    funnel.refresh_from_db()
    assert edited.status_code == 302
    assert funnel.name == "Ship it fast" and funnel.window_seconds == 3600
    # Empty rows are left out; the rest keep their order.
    assert [s["type"] for s in funnel.steps] == ["command_execution", "feature_used", "error"]

    confirm = client.get(url("funnel_delete", app, funnel_id=funnel.pk))
    assert confirm.status_code == 200 and "Delete “Ship it fast”?" in confirm.text
    assert Funnel.objects.filter(pk=funnel.pk).exists()
    deleted = client.post(url("funnel_delete", app, funnel_id=funnel.pk))
    assert deleted.status_code == 302 and not Funnel.objects.filter(pk=funnel.pk).exists()

    entries = list(AuditEntry.objects.filter(organization=app.organization).order_by("pk").values_list("action", "target", "details"))
    funnel_entries = [entry for entry in entries if entry[0].startswith("funnel.")]
    assert [action for action, _, _ in funnel_entries] == ["funnel.create", "funnel.update", "funnel.delete"]
    assert all(target == app.public_id for _, target, _ in funnel_entries)
    assert funnel_entries[0][2] == {"funnel": "Ship it", "steps": "command_execution: init, then command_execution: deploy; within 1 day"}
    assert funnel_entries[1][2]["name"] == {"from": "Ship it", "to": "Ship it fast"}
    audit = client.get(reverse("organizations:audit", kwargs={"org_id": app.organization.public_id}))
    assert "alice changed the funnel “Ship it fast” of" in audit.text
    assert "alice deleted the funnel “Ship it fast” of" in audit.text


def test_writes_need_post_and_a_csrf_token(app, alice, funnel):
    without_token = Client(enforce_csrf_checks=True)
    without_token.force_login(alice)
    assert without_token.post(url("funnel_delete", app, funnel_id=funnel.pk)).status_code == 403
    client = signed_in(alice)
    assert client.put(url("funnel_delete", app, funnel_id=funnel.pk)).status_code == 405
    assert client.post(url("funnel_detail", app, funnel_id=funnel.pk)).status_code == 405
    assert Funnel.objects.filter(pk=funnel.pk).exists()


def test_saving_unchanged_says_so_and_records_nothing(app, alice, funnel):
    client = signed_in(alice)
    data = {"name": "Onboarding", "window": "3600", "step_1_type": "command_execution", "step_1_name": "init",
            "step_2_type": "command_execution", "step_2_name": "build"}  # fmt: skip
    response = client.post(url("funnel_edit", app, funnel_id=funnel.pk), data, follow=True)
    assert "Nothing changed." in response.text
    assert not AuditEntry.objects.filter(action="funnel.update").exists()


# --- The form ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"step_2_type": "", "step_2_name": ""}, "A funnel needs at least 2 steps"),
        ({"step_2_type": "", "step_2_name": "deploy"}, "Step 2: pick the event type of “deploy”"),
        ({"step_2_type": "error", "step_2_name": "io"}, "Step 2: only command_execution (a command) and feature_used"),
        ({"name": ""}, "Give the funnel a name."),
        ({"window": "12345"}, "Pick one of the windows offered."),
        ({"window": "abc"}, "Pick one of the windows offered."),
        ({"step_3_type": "x" * 201}, "Step 3: an event type is at most 200 characters."),
        ({"step_3_type": "command_execution", "step_3_name": "y" * 201}, "Step 3: a command or feature name is at most 200 characters."),
        ({"step_1_type": "bad\x00type"}, "Null characters are not allowed."),
        ({"name": "Onboarding"}, "This app already has a funnel with that name."),
    ],
)
def test_the_form_explains_what_is_wrong(app, alice, funnel, overrides, message):
    response = signed_in(alice).post(url("funnel_new", app), new_funnel_data(**overrides))
    assert response.status_code == 400
    assert message in response.text
    assert Funnel.objects.filter(app=app).count() == 1


def test_a_name_taken_meanwhile_is_a_form_message_not_an_error(app, alice, funnel, monkeypatch):
    # As if another admin saved the same name between the form's check and the insert.
    monkeypatch.setattr("dashboard.funnel_forms.FunnelForm.clean_name", lambda form: form.cleaned_data["name"])
    response = signed_in(alice).post(url("funnel_new", app), new_funnel_data(name="Onboarding"))
    assert response.status_code == 400
    assert "This app already has a funnel with that name." in response.text


def test_the_form_offers_eight_steps_and_ignores_a_ninth(app, alice):
    data = new_funnel_data()
    for i in range(3, 10):
        data[f"step_{i}_type"] = "error"
    page = signed_in(alice).get(url("funnel_new", app))
    assert page.status_code == 200
    assert 'name="step_8_type"' in page.text and 'name="step_9_type"' not in page.text
    response = signed_in(alice).post(url("funnel_new", app), data)
    assert response.status_code == 302
    assert len(Funnel.objects.get(app=app).steps) == 8


def test_the_form_suggests_the_apps_event_types_and_names(app, alice):
    store(app, sdk_event(datetime(2026, 3, 9, tzinfo=UTC), data={"command": "publish"}),
          sdk_event(datetime(2026, 3, 9, tzinfo=UTC), type="feature_used", data={"feature": "remote"}))  # fmt: skip
    page = signed_in(alice).get(url("funnel_new", app))
    assert '<option value="publish">' in page.text and '<option value="remote">' in page.text
    assert '<option value="feature_used">' in page.text


def test_the_nav_links_to_funnels(app, bob):
    page = signed_in(bob).get(reverse("dashboard:app_overview", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id}))
    # The link keeps the overview's range and filters (dashboard.filter_bar), when it has any.
    assert f'href="{url("funnels", app)}"' in page.text or f'href="{url("funnels", app)}?' in page.text
    assert ">Funnels</a>" in page.text


def test_login_required(app, funnel):
    response = Client().get(url("funnel_detail", app, funnel_id=funnel.pk))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]

