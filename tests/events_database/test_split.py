"""Events on a database of their own (EVENTS_DATABASE_URL; telemetry/databases.py,
docs/events-database.md). The run's two databases share a PostgreSQL server, which
runs no query across databases: a join between them fails as between two servers."""

from __future__ import annotations

import io
import logging

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connections

from organizations.models import App, AuditEntry
from telemetry import databases, lifecycle, storage
from telemetry.models import Event, HourlyRollup, UsedNonce
from tests.factories import make_app, make_batch

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases="__all__")]


def tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor, include_views=True))


def count(alias: str, sql: str, params=()) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_the_run_has_events_on_another_database():
    assert databases.split() and databases.EVENTS == "events"
    default, events = connections["default"].settings_dict, connections["events"].settings_dict
    assert default["NAME"] != events["NAME"]
    assert connections["events"].features.supports_foreign_keys is False
    assert connections["default"].features.supports_foreign_keys is True


def test_each_apps_tables_are_on_its_own_database_only():
    on_default, on_events = tables("default"), tables("events")
    for model in django_apps.get_models():
        if not model._meta.managed:
            continue
        table = model._meta.db_table
        if model._meta.app_label == "telemetry":
            assert table in on_events and table not in on_default, table
        else:
            assert table in on_default and table not in on_events, table
    # The events table's partitions too, and the view over the hourly rollups.
    assert "telemetry_event_default" in on_events
    assert "telemetry_hourlycounts" in on_events


def test_the_events_database_has_no_foreign_keys():
    # They would point at apps and organizations, which live on the other server.
    assert count("events", "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 0
    assert count("default", "SELECT count(*) FROM pg_constraint WHERE contype = 'f'") > 0


def test_a_signed_batch_is_stored_on_the_events_database(app, signed_post):
    response = signed_post(app, make_batch(5))
    assert response.status_code == 200, response.content
    assert count("events", "SELECT count(*) FROM telemetry_event WHERE app_id = %s", [app.pk]) == 5
    assert Event.objects.filter(app=app).count() == 5
    assert Event.objects.db == "events"
    # The nonce store and the rollups are there too.
    assert UsedNonce.objects.filter(app_id=app.pk).count() == 1
    storage.fold_rollup_deltas()
    assert HourlyRollup.objects.filter(app_id=app.pk, dimension="total").exists()


def test_a_replayed_nonce_is_refused(app, signed_post):
    assert signed_post(app, make_batch(1), nonce="once-only").status_code == 200
    refused = signed_post(app, make_batch(1), nonce="once-only")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "nonce_reused"


def test_the_dashboard_reads_apps_and_events_from_their_databases(client, alice, org, app, signed_post):
    assert signed_post(app, make_batch(4)).status_code == 200
    storage.fold_rollup_deltas()
    client.force_login(alice)
    for page in ("", "events/", "live/", "releases/", "platforms/", "health/", "retention/", "funnels/", "properties/"):
        response = client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/{page}")
        assert response.status_code == 200, page
    assert client.get(f"/orgs/{org.public_id}/").status_code == 200


def test_deleting_an_app_deletes_its_rows_on_both_databases(client, alice, org, app, signed_post):
    keep, credential = make_app(org, name="keep")
    assert signed_post(app, make_batch(6)).status_code == 200
    assert signed_post(keep, make_batch(2), key=credential.secret).status_code == 200
    storage.fold_rollup_deltas()
    client.force_login(alice)
    response = client.post(f"/orgs/{org.public_id}/apps/{app.public_id}/settings/delete/", {"confirm": app.name})
    assert response.status_code == 302
    assert not App.objects.filter(pk=app.pk).exists()
    assert AuditEntry.objects.get(action="app.delete").details["events"] == 6
    for table in ("telemetry_event", "telemetry_eventkey", "telemetry_hourlyrollup", "telemetry_rollupdelta"):
        assert count("events", f"SELECT count(*) FROM {table} WHERE app_id = %s", [app.pk]) == 0, table
    assert Event.objects.filter(app_id=keep.pk).count() == 2


def test_erasing_a_user_counts_and_deletes_across_the_databases(org, app, signed_post, alice):
    batch = make_batch(3)
    for event in batch["events"]:
        event["user_id"] = "client_erase-me"
    assert signed_post(app, batch).status_code == 200
    assert signed_post(app, make_batch(2)).status_code == 200
    assert lifecycle.count_user_events(org, user_id="client_erase-me").per_app == {app.public_id: 3}
    result = lifecycle.erase_user(org, user_id="client_erase-me", by=alice, via="test")
    assert result.per_app == {app.public_id: 3}
    assert Event.objects.filter(app=app).count() == 2
    assert AuditEntry.objects.filter(action="user.erase").exists()


def test_health_and_ready_check_both_databases(client):
    body = client.get("/health").json()
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["events_database"]["status"] == "up"
    assert body["checks"]["events_database"]["pending_migrations"] == 0
    assert client.get("/ready").json() == {"status": "ready"}


def test_migrate_locked_migrates_both_databases(caplog):
    with caplog.at_level(logging.INFO, logger="clacks.migrate"):
        call_command("migrate_locked", stdout=io.StringIO())
    # One lock, then each database found up to date.
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all(message.startswith("no migrations to apply") for message in messages), messages


def test_the_scheduler_runs_every_job_against_the_right_database(app, signed_post):
    assert signed_post(app, make_batch(2)).status_code == 200
    out = io.StringIO()
    call_command("run_scheduler", "--once", stdout=out)
    lines = out.getvalue().splitlines()
    # It raises CommandError when a job fails; each line says what its job did.
    assert lines[-1] == f"Done: {len(lines) - 1} jobs ran." and len(lines) > 6, lines
    assert all(": done (" in line for line in lines[:-1]), lines
    assert HourlyRollup.objects.filter(app_id=app.pk).exists()
    assert count("events", "SELECT count(*) FROM telemetry_scheduledjob WHERE last_succeeded_at IS NOT NULL") == len(lines) - 1
