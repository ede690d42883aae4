"""telemetry.lifecycle.erase_user and delete_events: what goes, what stays, what the audit log keeps."""

from __future__ import annotations

import hashlib
import uuid

import orjson
import pytest
from django.test.utils import CaptureQueriesContext

from organizations.models import AuditEntry
from telemetry import lifecycle
from telemetry.databases import events_connection
from telemetry.models import Event
from tests.factories import make_app, make_event
from tests.lifecycle.conftest import store_events

ERASED = "client_" + "e" * 64
KEPT = "client_" + "k" * 64


def events_of(user_id: str, n: int, *, timestamp: str = "2026-11-20T10:00:00Z") -> list[dict]:
    return [make_event(user_id=user_id, timestamp=timestamp, event_id=str(uuid.uuid4())) for _ in range(n)]


@pytest.fixture
def second_app(org):
    return make_app(org, name="second")[0]


def test_it_deletes_the_users_events_in_every_app_of_the_organization(app, second_app, alice):
    store_events(app, events_of(ERASED, 3) + events_of(KEPT, 2))
    store_events(second_app, events_of(ERASED, 4))

    result = lifecycle.erase_user(app.organization, user_id=ERASED, by=alice, via="dashboard")

    assert result.per_app == {app.public_id: 3, second_app.public_id: 4}
    assert result.total == 7
    assert not Event.objects.filter(user_id=ERASED).exists()
    assert Event.objects.filter(app=app, user_id=KEPT).count() == 2


def test_it_leaves_the_same_user_id_in_other_organizations_alone(app, charlies_org):
    strangers_app, _ = make_app(charlies_org, name="stranger")
    store_events(app, events_of(ERASED, 2))
    store_events(strangers_app, events_of(ERASED, 5))

    lifecycle.erase_user(app.organization, user_id=ERASED, via="command")

    assert Event.objects.filter(app=strangers_app, user_id=ERASED).count() == 5
    assert not Event.objects.filter(app=app).exists()


def test_only_the_exact_user_id_matches(app):
    shouted = "client_" + "E" * 64
    store_events(app, events_of(ERASED, 1) + events_of(shouted, 1))

    by_prefix = lifecycle.erase_user(app.organization, user_id=ERASED[:-1], via="command")
    exact = lifecycle.erase_user(app.organization, user_id=ERASED, via="command")

    assert (by_prefix.total, exact.total) == (0, 1)
    assert list(Event.objects.values_list("user_id", flat=True)) == [shouted]


def test_a_dry_run_counts_per_app_and_deletes_nothing_nor_audits(app, second_app):
    store_events(app, events_of(ERASED, 2))
    store_events(second_app, events_of(ERASED, 1) + events_of(KEPT, 1))

    result = lifecycle.erase_user(app.organization, user_id=ERASED, via="command", dry_run=True)

    assert result.dry_run is True
    assert result.per_app == {app.public_id: 2, second_app.public_id: 1}
    assert Event.objects.count() == 4
    assert not AuditEntry.objects.filter(action="user.erase").exists()


def test_the_audit_record_keeps_a_digest_and_the_counts_but_not_the_user_id(app, alice):
    store_events(app, events_of(ERASED, 3))

    lifecycle.erase_user(app.organization, user_id=ERASED, by=alice, via="dashboard")

    entry = AuditEntry.objects.get(action="user.erase")
    digest = hashlib.sha256(f"clacks-erasure:{app.organization.public_id}:{ERASED}".encode()).hexdigest()
    assert entry.organization == app.organization
    assert entry.actor == alice
    assert entry.target == f"user sha256:{digest[:16]}"
    assert entry.details == {
        "user_id_sha256": digest,
        "events": 3,
        "per_app": {app.public_id: 3},
        "via": "dashboard",
    }
    assert ERASED not in entry.target + orjson.dumps(entry.details).decode()
    assert "e" * 64 not in orjson.dumps(entry.details).decode()


def test_an_erasure_of_a_user_without_events_is_still_recorded(app):
    lifecycle.erase_user(app.organization, user_id=ERASED, via="command")

    entry = AuditEntry.objects.get(action="user.erase")
    assert entry.details["events"] == 0
    assert entry.actor is None


def test_running_it_again_deletes_nothing_more_and_records_again(app):
    store_events(app, events_of(ERASED, 2))

    first = lifecycle.erase_user(app.organization, user_id=ERASED, via="command")
    second = lifecycle.erase_user(app.organization, user_id=ERASED, via="command")

    assert (first.total, second.total) == (2, 0)
    assert AuditEntry.objects.filter(action="user.erase").count() == 2


def test_it_deletes_in_batches_of_the_given_size(app):
    store_events(app, events_of(ERASED, 10) + events_of(KEPT, 3))

    with CaptureQueriesContext(events_connection) as queries:
        result = lifecycle.erase_user(app.organization, user_id=ERASED, via="command", batch_size=3)

    deletes = [query["sql"] for query in queries if query["sql"].startswith('DELETE FROM "telemetry_event"')]
    assert result.total == 10
    assert len(deletes) == 4  # 3 + 3 + 3 + 1
    assert Event.objects.filter(user_id=KEPT).count() == 3


def test_a_blank_or_overlong_user_id_is_refused_with_a_message(app):
    with pytest.raises(lifecycle.LifecycleError, match="Enter the user id"):
        lifecycle.erase_user(app.organization, user_id="   ", via="command")
    with pytest.raises(lifecycle.LifecycleError, match="at most 200 characters"):
        lifecycle.erase_user(app.organization, user_id="client_" + "x" * 200, via="command")


def test_delete_events_removes_exactly_the_selected_events_across_shared_timestamps(app):
    store_events(app, events_of(ERASED, 7) + events_of(KEPT, 5) + events_of(ERASED, 2, timestamp="2026-11-21T00:00:00Z"))

    deleted = lifecycle.delete_events(Event.objects.for_app(app).filter(user_id=ERASED), batch_size=2)

    assert deleted == 9
    assert list(Event.objects.values_list("user_id", flat=True).distinct()) == [KEPT]
    assert Event.objects.count() == 5


def test_it_erases_more_events_than_one_scan_collects(app):
    scan = lifecycle.DELETE_BATCHES_PER_SCAN
    store_events(app, events_of(ERASED, 2 * scan + 5) + events_of(KEPT, 3))

    with CaptureQueriesContext(events_connection) as queries:
        result = lifecycle.erase_user(app.organization, user_id=ERASED, via="command", batch_size=1)

    deletes = [query["sql"] for query in queries if query["sql"].startswith('DELETE FROM "telemetry_event"')]
    assert result.total == len(deletes) == 2 * scan + 5
    assert Event.objects.filter(user_id=KEPT).count() == 3
