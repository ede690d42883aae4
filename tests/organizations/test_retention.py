"""Retention: the domain functions the preview and `manage.py purge_events` share."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from organizations.models import App
from telemetry import retention
from telemetry.models import Event, UsedNonce
from tests.factories import make_app


def test_events_past_retention_counts_what_the_effective_setting_removes(app, events):
    now = timezone.now()
    events(app, 3, age=timedelta(days=91), now=now)
    events(app, 2, age=timedelta(days=89), now=now)
    assert retention.events_past_retention(app, now=now) == 3  # organization default: 90 days
    app.retention_override, app.retention_days = True, 30
    assert retention.events_past_retention(app, now=now) == 5
    app.retention_days = None
    assert retention.events_past_retention(app, now=now) == 0  # kept forever


def test_prune_app_deletes_only_expired_events_and_stamps_the_run(app, events):
    now = timezone.now()
    events(app, 4, age=timedelta(days=100), now=now)
    events(app, 2, age=timedelta(days=1), now=now)
    result = retention.prune_app(app, now=now, batch_size=3)
    assert (result.deleted, result.batches) == (4, 2)
    assert Event.objects.filter(app=app).count() == 2
    app.refresh_from_db()
    assert app.retention_last_run_at == now


def test_a_dry_run_deletes_nothing_and_leaves_last_run_alone(app, events):
    now = timezone.now()
    events(app, 4, age=timedelta(days=100), now=now)
    result = retention.prune_app(app, now=now, dry_run=True)
    assert (result.deleted, result.dry_run) == (4, True)
    assert Event.objects.count() == 4
    app.refresh_from_db()
    assert app.retention_last_run_at is None


def test_other_apps_events_are_untouched(org, app, events):
    other = make_app(org, name="other")[0]
    other.retention_override, other.retention_days = True, None
    other.save()
    now = timezone.now()
    events(app, 2, age=timedelta(days=100), now=now)
    events(other, 2, age=timedelta(days=100), now=now)
    retention.prune_app(app, now=now)
    retention.prune_app(other, now=now)
    assert Event.objects.filter(app=other).count() == 2
    assert Event.objects.filter(app=app).count() == 0


def test_purge_events_reports_each_app_and_deletes_in_bounded_batches(app, events, django_assert_max_num_queries):
    events(app, 12, age=timedelta(days=100))
    out = StringIO()
    call_command("purge_events", "--batch-size", "5", stdout=out)
    text = out.getvalue()
    assert f"{app.public_id}: 5 deleted so far" in text
    assert f"{app.public_id}: 10 deleted so far" in text
    assert f"{app.public_id}: 12 deleted so far" in text
    assert f"{app.public_id} (retention 90 days): deleted 12 events" in text
    assert "Done: 12 events deleted" in text
    assert not Event.objects.exists()


def test_each_batch_deletes_at_most_batch_size_rows(app, events):
    from django.test.utils import CaptureQueriesContext

    events(app, 7, age=timedelta(days=100))
    with CaptureQueriesContext(connection) as queries:
        retention.prune_app(app, now=timezone.now(), batch_size=3)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('DELETE FROM "telemetry_event"')]
    sizes = [len(re.search(r"IN \(([^)]*)\)", sql).group(1).split(",")) for sql in deletes]
    assert sizes == [3, 3, 1]


def test_purge_events_dry_run_deletes_nothing(app, events):
    events(app, 3, age=timedelta(days=100))
    out = StringIO()
    call_command("purge_events", "--dry-run", stdout=out)
    assert f"{app.public_id} (retention 90 days): would delete 3 events" in out.getvalue()
    assert "would be deleted (dry run)" in out.getvalue()
    assert Event.objects.count() == 3


def test_purge_events_prunes_expired_nonces(app):
    now = timezone.now()
    UsedNonce.objects.create(app_id=app.pk, nonce="old", expires_at=now - timedelta(hours=1))
    UsedNonce.objects.create(app_id=app.pk, nonce="live", expires_at=now + timedelta(hours=1))
    out = StringIO()
    call_command("purge_events", stdout=out)
    assert "1 expired nonces pruned" in out.getvalue()
    assert list(UsedNonce.objects.values_list("nonce", flat=True)) == ["live"]


def test_purge_events_can_be_limited_to_one_app_and_refuses_unknown_ones(org, app, events):
    other = make_app(org, name="other")[0]
    events(app, 1, age=timedelta(days=100))
    events(other, 1, age=timedelta(days=100))
    call_command("purge_events", "--app", other.public_id, stdout=StringIO())
    assert Event.objects.filter(app=app).count() == 1
    assert Event.objects.filter(app=other).count() == 0
    with pytest.raises(CommandError, match="No app with id app_nope"):
        call_command("purge_events", "--app", "app_nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("purge_events", "--batch-size", "0", stdout=StringIO())


def test_running_purge_events_twice_in_a_row_is_harmless(app, events):
    events(app, 3, age=timedelta(days=100))
    call_command("purge_events", stdout=StringIO())
    out = StringIO()
    call_command("purge_events", stdout=out)
    assert "Done: 0 events deleted" in out.getvalue()


def test_the_retention_page_shows_the_run_after_purge_events(login, alice, app, events):
    events(app, 2, age=timedelta(days=100))
    call_command("purge_events", stdout=StringIO())
    page = login(alice).get(f"/orgs/{app.organization.public_id}/apps/{app.public_id}/settings/")
    assert b"Retention last ran: <time" in page.content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_purges_at_once_neither_fail_nor_count_a_row_twice(on_postgres):
    from tests.factories import make_org, make_user
    from tests.organizations.conftest import store_events

    owner = make_user("owner")
    app = make_app(make_org(name="Busy", owner=owner), name="busy")[0]
    app = App.objects.select_related("organization").get(pk=app.pk)
    now = timezone.now()
    for _ in range(6):
        store_events(app, 500, age=timedelta(days=120), now=now)
    store_events(app, 10, age=timedelta(days=1), now=now)

    barrier = threading.Barrier(2)
    results, errors = [], []

    def purge():
        try:
            barrier.wait()
            mine = App.objects.select_related("organization").get(pk=app.pk)
            results.append(retention.prune_app(mine, now=now, batch_size=100).deleted)
        except Exception as exc:  # collected and asserted below: the test must see it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=purge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(results) == 3000
    assert Event.objects.filter(app=app).count() == 10


def test_the_fast_count_matches_the_raw_events_around_hour_boundaries(app, events):
    from datetime import datetime, timezone as dt_timezone

    now = datetime(2026, 3, 10, 12, 30, tzinfo=dt_timezone.utc)
    for minutes in (0, 1, 29, 30, 31, 59, 60, 61, 90, 24 * 60 + 5):
        events(app, 1, age=timedelta(days=30, minutes=minutes), now=now)
    for days in (29, 30, 31):
        for extra in (timedelta(0), timedelta(minutes=30), timedelta(minutes=45)):
            cutoff = now - timedelta(days=days) - extra
            raw = Event.objects.filter(app=app, timestamp__lt=cutoff).count()
            assert retention.count_before(app, cutoff) == raw, cutoff
    assert retention.stored_events(app) == Event.objects.filter(app=app).count() == 10
