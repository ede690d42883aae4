"""/metrics counts the stored notifications by status."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerts import services
from alerts.models import ChannelKind, Notification

pytestmark = pytest.mark.django_db


def gauges(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name.startswith("clacks_alert_"):
                found[(sample.name, sample.labels.get("status", ""))] = sample.value
    return found


def test_metrics_show_pending_delivered_failed_and_retrying_notifications(client, org):
    channel, _ = services.create_channel(org, name="ops", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/x")
    for _ in range(3):
        services.send_test(channel)
    first, second, third = Notification.objects.order_by("pk")
    Notification.objects.filter(pk=first.pk).update(status="delivered", attempts=1)
    Notification.objects.filter(pk=second.pk).update(status="failed", attempts=30)
    Notification.objects.filter(pk=third.pk).update(attempts=2)

    found = gauges(client)
    assert found[("clacks_alert_notifications", "pending")] == 1
    assert found[("clacks_alert_notifications", "delivered")] == 1
    assert found[("clacks_alert_notifications", "failed")] == 1
    assert found[("clacks_alert_notifications_retrying", "")] == 1
