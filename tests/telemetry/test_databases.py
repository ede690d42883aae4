"""Which database each table lives on (telemetry/databases.py; docs/events-database.md).
The run with events on a database of their own is tests/events_database."""

from __future__ import annotations

import pytest

from alerts.models import Rule
from organizations.models import App
from telemetry import databases
from telemetry.databases import EventsRouter
from telemetry.models import Event, UsedNonce
from tests.factories import make_batch


def test_migrations_go_to_the_database_of_their_app():
    router = EventsRouter()
    assert router.allow_migrate("events", "telemetry") is True
    assert router.allow_migrate("default", "telemetry") is False
    assert router.allow_migrate("events", "organizations") is False
    assert router.allow_migrate("events", "auth") is False
    assert router.allow_migrate("default", "alerts") is True
    assert router.allow_migrate("replica", "telemetry") is None  # telemetry.replicas decides


def test_event_tables_are_read_and_written_where_events_live():
    router = EventsRouter()
    for model in (Event, UsedNonce):
        assert router.db_for_read(model) == router.db_for_write(model) == databases.EVENTS
    for model in (App, Rule):
        # An answer even when a hint's instance is an event: Django would otherwise
        # follow the instance to the events database.
        assert router.db_for_read(model, instance=Event()) == router.db_for_write(model) == "default"


def test_without_events_database_url_everything_shares_one_database():
    assert not databases.split()
    assert databases.EVENTS == "default"
    assert databases.events_connection.alias == "default"


@pytest.mark.django_db
def test_with_one_database_deleting_an_app_still_cascades_to_its_events(app, signed_post):
    # The dashboard deletes the events first; Django's cascade remains the net.
    assert signed_post(app, make_batch(3)).status_code == 200
    app_pk = app.pk
    app.delete()
    assert not Event.objects.filter(app_id=app_pk).exists()
