"""The weekly digest: last week's figures per app, made once per organization and
week, to the channels that asked for it and to each subscribed member's email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts import delivery, digest, services
from alerts.models import ChannelKind, DigestSubscription, Notification
from tests.alerts.conftest import store, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def monday():
    """A Monday morning after a week with events."""
    today = timezone.now().replace(hour=8, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday())


def test_a_digest_reaches_a_digest_channel_and_a_subscribed_member_once(app, org, alice, bob, receiver, allow_private,
                                                                         smtp_server, monday):
    week = monday - timedelta(days=7)
    store(app, at=week + timedelta(days=1, hours=3), n=6, success=True, version="1.0.0")
    store(app, at=week + timedelta(days=2, hours=3), n=2, success=False, version="1.1.0", command="deploy")
    store(app, at=week - timedelta(days=1), n=50, version="0.9.0")  # the week before: not counted
    channel, secret = services.create_channel(org, name="hooks", kind=ChannelKind.WEBHOOK, url=receiver.url, weekly_digest=True)
    services.create_channel(org, name="alerts only", kind=ChannelKind.WEBHOOK, url=receiver.url)
    services.set_digest_subscription(org, alice, subscribed=True)

    assert digest.send_digest(org, now=monday) == 2
    assert digest.send_digest(org, now=monday + timedelta(hours=1)) == 0  # once a week, whoever runs it
    assert delivery.deliver_due(now=monday).delivered == 2

    (received,) = receiver.received
    assert verify(secret, received)
    body = received.json()
    assert body["type"] == "digest" and body["week"] == {"start": week.date().isoformat(), "end": (week + timedelta(days=6)).date().isoformat()}
    (figures,) = body["apps"]
    assert (figures["events"], figures["users"], figures["failure_rate"]) == (8, 1, 25.0)
    assert figures["top_commands"] == [{"command": "build", "runs": 6, "failure_rate": 0.0}, {"command": "deploy", "runs": 2, "failure_rate": 100.0}]
    assert (figures["newest_version"], figures["newest_version_users_percent"]) == ("1.1.0", 100.0)

    (mail,) = smtp_server.parsed()
    assert smtp_server.messages[0][1] == ["alice@example.com"]
    assert mail["Subject"] == f"[Clacks] Weekly digest of Alice Org, week of {week:%d %b %Y}"
    assert "my-cli: 8 events, 1 users, 25.0 % of command runs failed" in mail.get_content()


def test_the_digest_job_skips_organizations_nobody_asked_for_and_done_weeks(org, monday, alice):
    assert digest.digest_job(monday).startswith("0 digest notifications")
    services.set_digest_subscription(org, alice, subscribed=True)
    assert digest.digest_job(monday).startswith("1 digest notifications")
    assert digest.digest_job(monday + timedelta(hours=1)).startswith("0 digest notifications")
    assert Notification.objects.get().email_to == "alice@example.com"


def test_a_member_subscribes_and_unsubscribes_on_the_digest_page(client, bob, org):
    client.force_login(bob)
    url = reverse("alerts:digest", kwargs={"org_id": org.public_id})
    assert "You do not get it by email." in client.get(url).content.decode()
    response = client.post(url, {"subscribed": "on"}, follow=True)
    assert "You get the weekly digest by email." in response.content.decode()
    assert DigestSubscription.objects.filter(organization=org, user=bob).exists()
    client.post(url, {})
    assert not DigestSubscription.objects.exists()
