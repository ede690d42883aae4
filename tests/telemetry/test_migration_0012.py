"""Migration 0012 fills UserDay from the events stored before it (README, Upgrading)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from telemetry.models import UserDay
from tests.factories import make_app, make_org

BEFORE = ("telemetry", "0011_event_keys_and_rollup_deltas")
AFTER = ("telemetry", "0012_segmented_rollups_and_user_days")


@pytest.fixture
def before_0012(transactional_db):
    """The schema as it was before 0012 (historical models to write with), and
    the latest again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    yield executor.loader.project_state([BEFORE]).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("telemetry"))


def test_0012_fills_user_days_from_the_stored_events(before_0012):
    org = make_org(name="Old Org")
    app, other = make_app(org, name="old")[0], make_app(org, name="other")[0]
    Event = before_0012.get_model("telemetry", "Event")
    late = datetime(2026, 3, 9, 23, 30, tzinfo=timezone.utc)

    def event(app_id, when, user, version="1.0.0", os="linux", os_version="6.1", arch="x86_64", ci=False):
        return Event(
            app_id=app_id, event_id=uuid.uuid4(), timestamp=when, schema_version="1.0.0", event_type="x",
            user_id=user, service_name="cli", service_version=version, service_language="rust", os=os,
            os_version=os_version, arch=arch, ci=ci, sdk_version="t", data={},
        )  # fmt: skip

    Event.objects.bulk_create([
        event(app.pk, late, "client_a"),
        event(app.pk, late - timedelta(hours=3), "client_a"),  # same day and combination: one row
        event(app.pk, late + timedelta(hours=1), "client_a"),  # the next UTC day
        event(app.pk, late, "client_a", version="1.1.0", ci=None),
        event(app.pk, late, "client_b", os="windows", os_version="", arch="", ci=True),
        event(other.pk, late, "client_a"),
    ])  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])

    rows = set(UserDay.objects.values_list("app_id", "day", "user_id", "service_version", "os", "os_version", "arch", "ci"))
    assert rows == {
        (app.pk, date(2026, 3, 9), "client_a", "1.0.0", "linux", "6.1", "x86_64", "false"),
        (app.pk, date(2026, 3, 10), "client_a", "1.0.0", "linux", "6.1", "x86_64", "false"),
        (app.pk, date(2026, 3, 9), "client_a", "1.1.0", "linux", "6.1", "x86_64", ""),
        (app.pk, date(2026, 3, 9), "client_b", "1.0.0", "windows", "", "", "true"),
        (other.pk, date(2026, 3, 9), "client_a", "1.0.0", "linux", "6.1", "x86_64", "false"),
    }
