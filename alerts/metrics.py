"""Notification gauges for /metrics, set from the database on each scrape (telemetry.metrics
calls observe_notifications, registered in alerts.apps)."""

from __future__ import annotations

from django.db import DatabaseError
from django.db.models import Count
from prometheus_client import Gauge

from alerts.models import Notification, NotificationStatus

NOTIFICATIONS = Gauge(
    "clacks_alert_notifications",
    "Stored alert notifications by status: pending (waiting or being retried), delivered, failed (given up after 24 h).",
    ["status"],
    multiprocess_mode="mostrecent",
)
NOTIFICATION_ATTEMPTS_FAILED = Gauge(
    "clacks_alert_notifications_retrying",
    "Pending notifications that have failed at least one attempt.",
    multiprocess_mode="mostrecent",
)


def observe_notifications() -> None:
    try:
        counts = dict(Notification.objects.values_list("status").annotate(n=Count("pk")).order_by())
        retrying = Notification.objects.filter(status=NotificationStatus.PENDING, attempts__gt=0).count()
    except DatabaseError:
        return  # /health says why; the other metrics still export
    for status in NotificationStatus.values:
        NOTIFICATIONS.labels(status=status).set(counts.get(status, 0))
    NOTIFICATION_ATTEMPTS_FAILED.set(retrying)
