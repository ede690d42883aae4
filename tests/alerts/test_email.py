"""The email channel, delivered to a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts import delivery, rules, services
from alerts.models import ChannelKind, Notification, RuleKind
from tests.alerts.conftest import store

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail_channel(org, smtp_server):
    channel, _ = services.create_channel(org, name="mail", kind=ChannelKind.EMAIL, recipients="ops@example.com, dev@example.com")
    return channel


def fire_and_resolve(app, now):
    store(app, at=now - timedelta(minutes=30))
    services.create_rule(app, name="stopped", kind=RuleKind.SILENCE, minutes=10, cooldown_minutes=0)
    rules.evaluate_rules(now=now)
    store(app, at=now)
    rules.evaluate_rules(now=now + timedelta(minutes=1))


def test_an_alert_and_its_resolve_reach_the_smtp_server_once_each(app, mail_channel, smtp_server, now, settings):
    settings.DEFAULT_FROM_EMAIL = "clacks@example.com"
    fire_and_resolve(app, now)

    assert delivery.deliver_due(now=now + timedelta(minutes=1)).delivered == 2
    assert delivery.deliver_due(now=now + timedelta(hours=1)).delivered == 0

    firing, resolved = smtp_server.parsed()
    assert firing["Subject"] == "[Clacks] FIRING: stopped on my-cli"
    assert resolved["Subject"] == "[Clacks] Resolved: stopped on my-cli"
    assert firing["From"] == "clacks@example.com"
    assert sorted(smtp_server.messages[0][1]) == ["dev@example.com", "ops@example.com"]
    assert "No events for 30 minutes" in firing.get_content()
    keys = {message["X-Clacks-Idempotency-Key"] for message in (firing, resolved)}
    assert keys == {str(n.idempotency_key) for n in Notification.objects.all()}


def test_an_smtp_server_that_is_down_is_retried(app, mail_channel, smtp_server, now):
    smtp_server.stop()
    fire_and_resolve(app, now)
    assert delivery.deliver_due(now=now + timedelta(minutes=1)).failed == 2
    assert "ConnectionRefusedError" in Notification.objects.first().delivery_attempts.get().error

    smtp_server.start()
    assert delivery.deliver_due(now=now + timedelta(minutes=2)).delivered == 2
    assert len(smtp_server.messages) == 2
