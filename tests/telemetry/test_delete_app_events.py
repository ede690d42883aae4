"""telemetry.storage.delete_app_events: an app's events go in bounded batches, nobody else's."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from telemetry import storage
from telemetry.models import Event
from tests.factories import make_app
from tests.organizations.conftest import store_events


def test_it_deletes_every_event_of_the_app_and_says_how_many(org, app):
    store_events(app, 25)

    assert storage.delete_app_events(app.pk, batch_size=10) == 25
    assert not Event.objects.filter(app=app).exists()


def test_each_batch_deletes_at_most_batch_size_rows(org, app):
    store_events(app, 7)

    with CaptureQueriesContext(connection) as queries:
        storage.delete_app_events(app.pk, batch_size=3)

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE FROM telemetry_event ")]
    # 3 + 3 + 1: a statement that deletes fewer than a batch is the last.
    assert len(deletes) == 3
    assert all(sql.endswith("LIMIT 3)") for sql in deletes)


def test_other_apps_keep_their_events(org, app):
    other = make_app(org, name="other")[0]
    store_events(app, 3)
    store_events(other, 2)

    storage.delete_app_events(app.pk)

    assert Event.objects.filter(app=other).count() == 2


def test_an_app_without_events_deletes_nothing(org, app):
    assert storage.delete_app_events(app.pk) == 0
