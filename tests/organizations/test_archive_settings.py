"""The archive choice in the retention settings: the organization's default and each app's own."""

from __future__ import annotations

from django.urls import reverse

from organizations.models import AuditEntry


def org_retention_url(org) -> str:
    return reverse("dashboard:org_retention", kwargs={"org_id": org.public_id})


def app_retention_url(app) -> str:
    return reverse("dashboard:app_retention", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def app_settings_url(app) -> str:
    return reverse("dashboard:app_settings", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def test_an_owner_turns_archiving_on_for_the_organization_and_it_is_audited(client, alice, org, app):
    client.force_login(alice)
    page = client.get(reverse("dashboard:org_settings", kwargs={"org_id": org.public_id})).content.decode()
    assert "Archive the events (Parquet files), then delete them" in page
    assert "server&#x27;s archive directory" in page or "server's archive directory" in page

    response = client.post(org_retention_url(org), {"choice": "90", "archive": "on"})

    assert response.status_code == 302
    org.refresh_from_db()
    app.refresh_from_db()
    assert org.archive_before_delete is True and app.effective_archive is True
    entry = AuditEntry.objects.get(action="archive.organization")
    assert (entry.actor, entry.details) == (alice, {"from": False, "to": True})
    page = client.get(reverse("dashboard:org_settings", kwargs={"org_id": org.public_id})).content.decode()
    assert '<span class="badge">archived first</span>' in page  # the per-app table


def test_an_app_overrides_the_organizations_choice_and_can_follow_it_again(client, alice, org, app):
    client.force_login(alice)
    client.post(app_retention_url(app), {"choice": "inherit", "archive": "on"})
    app.refresh_from_db()
    assert (app.archive_before_delete, app.effective_archive) == (True, True)
    assert "archived" in client.get(app_settings_url(app)).content.decode()

    client.post(app_retention_url(app), {"choice": "inherit", "archive": "inherit"})
    app.refresh_from_db()
    assert (app.archive_before_delete, app.effective_archive) == (None, False)
    assert [entry.details for entry in AuditEntry.objects.filter(action="archive.app").order_by("pk")] == [
        {"from": None, "to": True},
        {"from": True, "to": None},
    ]


def test_a_retention_post_without_the_archive_field_leaves_it_alone(client, alice, org, app):
    app.archive_before_delete = True
    app.save()
    client.force_login(alice)
    client.post(app_retention_url(app), {"choice": "7"})
    app.refresh_from_db()
    assert (app.archive_before_delete, app.retention_days) == (True, 7)


def test_a_bad_archive_value_is_a_form_error(client, alice, org, app):
    client.force_login(alice)
    response = client.post(app_retention_url(app), {"choice": "7", "archive": "sometimes"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_viewers_cannot_change_archiving(client, bob, org, app):
    client.force_login(bob)
    assert client.post(app_retention_url(app), {"choice": "7", "archive": "on"}).status_code == 403
    assert client.post(org_retention_url(org), {"choice": "7", "archive": "on"}).status_code == 403
    app.refresh_from_db()
    org.refresh_from_db()
    assert (app.archive_before_delete, org.archive_before_delete) == (None, False)


def test_the_preview_counts_whole_days_when_the_form_turns_archiving_on(client, alice, org, app):
    from datetime import datetime, timedelta, timezone

    from tests.dashboard.conftest import sdk_event, store

    now = datetime.now(timezone.utc)
    cutoff = now - timedelta(days=7)
    midnight = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    if cutoff - midnight < timedelta(minutes=2):
        midnight -= timedelta(days=1)  # keep the two events apart however close to midnight this runs
    store(app, sdk_event(midnight - timedelta(hours=1), user="a"), sdk_event(cutoff - timedelta(minutes=1), user="b"), now=now)
    client.force_login(alice)

    plain = client.post(app_retention_url(app), {"choice": "7", "archive": "off", "preview": "1"}).content.decode()
    archiving = client.post(app_retention_url(app), {"choice": "7", "archive": "on", "preview": "1"}).content.decode()

    assert "Saving this would delete <strong>2</strong> events" in plain
    assert "Saving this would delete <strong>1</strong> event " in archiving
    app.refresh_from_db()
    assert app.archive_before_delete is None  # a preview saves nothing
