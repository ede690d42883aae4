"""The app overview's live view: its figures as a fragment, and the last 30 minutes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.live import recent_events
from tests.alerts.conftest import store
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_recent_events_count_the_last_30_minutes_and_not_the_future(app):
    now = timezone.now()
    store(app, at=now - timedelta(minutes=5), n=3)
    store(app, at=now - timedelta(minutes=29), n=1)
    store(app, at=now - timedelta(minutes=31), n=4)
    store(app, at=now + timedelta(minutes=10), n=2)  # a client whose clock runs ahead
    assert recent_events([app.pk], now=now).count == 4


def test_the_fragment_has_the_figures_and_the_counter(client, alice, org, app):
    now = timezone.now()
    store(app, at=now - timedelta(minutes=2), n=5)
    client.force_login(alice)
    url = f"/orgs/{org.public_id}/apps/{app.public_id}/live/?range=24h"
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert body.lstrip().startswith("{%") is False and "<html" not in body  # a fragment, not a page
    assert '<div class="live-figures" data-ever="1">' in body
    assert "<strong>5</strong> events in the last 30 minutes" in body
    assert "Events per hour (UTC)" in body and '<h2 class="stat-label">Events</h2>' in body


def test_the_overview_wires_the_live_view(client, alice, org, app):
    store(app, at=timezone.now() - timedelta(hours=3))
    client.force_login(alice)
    body = client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/?range=7d").content.decode()
    assert f'data-live-url="/orgs/{org.public_id}/apps/{app.public_id}/live/?range=7d"' in body
    assert 'class="button small live-toggle" aria-pressed="false" hidden' in body
    assert "/static/js/live.js" in body
    assert "<strong>0</strong> events in the last 30 minutes" in body


def test_before_the_first_event_the_page_waits_for_it(client, alice, org, app):
    client.force_login(alice)
    body = client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/").content.decode()
    assert 'data-empty="1"' in body and "No events yet" in body
    fragment = client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/live/").content.decode()
    assert 'data-ever="0"' in fragment and "chart" not in fragment


def test_the_fragment_keeps_tenants_apart(client, charlie, org, app):
    client.force_login(charlie)
    assert client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/live/").status_code == 404
    client.logout()
    response = client.get(f"/orgs/{org.public_id}/apps/{app.public_id}/live/")
    assert response.status_code == 302
