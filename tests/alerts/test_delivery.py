"""Delivery of stored notifications: signed JSON, retries with backoff, each attempt
logged, every notification reaching a receiver that was down exactly once, nothing
lost when delivery dies mid-call, and channels disabled after repeated failures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts import delivery, outbound, rules, services
from alerts.models import ChannelKind, Notification, RuleKind
from tests.alerts.conftest import store, verify

pytestmark = pytest.mark.django_db


def fire_silence(app, now):
    """A silence rule of the app fired at `now` (its notifications stored, none sent)."""
    store(app, at=now - timedelta(minutes=30))
    services.create_rule(app, name="stopped", kind=RuleKind.SILENCE, minutes=10, cooldown_minutes=0)
    result = rules.evaluate_rules(now=now)
    assert len(result.transitions) == 1
    return result.transitions[0]


def test_a_webhook_gets_the_payload_signed_over_timestamp_and_body(app, org, webhook, receiver, now):
    channel, secret = webhook
    fire_silence(app, now)

    assert delivery.deliver_due(now=now).delivered == 1

    (received,) = receiver.received
    assert verify(secret, received)
    body = received.json()
    assert body["type"] == "alert" and body["state"] == "firing"
    assert body["rule"]["name"] == "stopped" and body["app"]["id"] == app.public_id
    assert (body["value"], body["threshold"]) == ("30 min", "10 min")
    assert body["link"].startswith("http") and body["idempotency_key"] == received.headers["x-clacks-idempotency-key"]
    assert received.headers["x-clacks-timestamp"] == str(int(now.timestamp()))
    assert received.headers["content-type"] == "application/json"


def test_a_tampered_body_does_not_verify(webhook, receiver, app, now):
    channel, secret = webhook
    fire_silence(app, now)
    delivery.deliver_due(now=now)
    received = receiver.received[0]
    received.body = received.body.replace(b"firing", b"resolved")
    assert not verify(secret, received)


def test_a_receiver_that_is_down_then_up_gets_each_notification_exactly_once(app, webhook, receiver, now):
    fire_silence(app, now)
    store(app, at=now + timedelta(seconds=5))
    rules.evaluate_rules(now=now + timedelta(minutes=1))  # resolved: a second notification
    assert Notification.objects.count() == 2

    receiver.status = 503
    first = delivery.deliver_due(now=now + timedelta(minutes=1))
    assert (first.delivered, first.failed) == (0, 2)
    assert delivery.deliver_due(now=now + timedelta(minutes=1, seconds=10)).failed == 0  # not due yet: 30 s backoff
    second = delivery.deliver_due(now=now + timedelta(minutes=1, seconds=31))
    assert second.failed == 2  # still down; next wait 1 minute

    receiver.status = 200
    assert delivery.deliver_due(now=now + timedelta(minutes=2)).delivered == 0
    assert delivery.deliver_due(now=now + timedelta(minutes=2, seconds=32)).delivered == 2
    assert delivery.deliver_due(now=now + timedelta(hours=3)).delivered == 0

    accepted = [item.json() for item in receiver.delivered()]
    assert sorted(item["state"] for item in accepted) == ["firing", "resolved"]
    assert len({item["idempotency_key"] for item in accepted}) == 2
    # Every attempt of a notification carried the same key.
    keys = receiver.keys()
    assert len(keys) == 6 and len(set(keys)) == 2
    for notification in Notification.objects.all():
        assert (notification.status, notification.attempts) == ("delivered", 3)
        attempts = list(notification.delivery_attempts.order_by("started_at").values_list("ok", "status_code", "response_excerpt"))
        assert attempts == [(False, 503, "receiver is down"), (False, 503, "receiver is down"), (True, 200, '{"ok":true}')]


def test_retries_back_off_exponentially_and_give_up_after_24_hours(app, webhook, receiver, now, settings):
    settings.CLACKS_CHANNEL_MAX_FAILURES = 1000  # keep the channel on for the whole day
    receiver.status = 500
    fire_silence(app, now)
    moment, waits = now, []
    notification = Notification.objects.get()
    while notification.status == "pending" and len(waits) < 100:
        assert delivery.deliver_due(now=moment).failed == 1
        notification.refresh_from_db()
        waits.append(notification.next_attempt_at - moment)
        moment = notification.next_attempt_at
    assert waits[:5] == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480)]
    assert max(waits) == timedelta(hours=1)
    assert notification.status == "failed"
    assert moment - now <= timedelta(hours=25)
    assert notification.delivery_attempts.count() == notification.attempts


def test_delivery_dying_after_the_call_loses_nothing_and_the_key_marks_the_repeat(app, webhook, receiver, monkeypatch, now):
    fire_silence(app, now)
    real_post = outbound.post

    def post_then_die(*args, **kwargs):
        real_post(*args, **kwargs)
        raise SystemExit("killed between sending and recording")

    monkeypatch.setattr(outbound, "post", post_then_die)
    with pytest.raises(SystemExit):
        delivery.deliver_due(now=now)
    monkeypatch.setattr(outbound, "post", real_post)

    notification = Notification.objects.get()
    assert notification.status == "pending" and notification.lease_until == now + delivery.LEASE
    assert delivery.deliver_due(now=now + timedelta(seconds=30)).delivered == 0  # its lease still holds
    assert delivery.deliver_due(now=now + delivery.LEASE + timedelta(seconds=1)).delivered == 1

    notification.refresh_from_db()
    assert notification.status == "delivered"
    assert len(receiver.received) == 2 and len(set(receiver.keys())) == 1  # the receiver drops the repeat by its key


def test_a_channel_is_disabled_after_consecutive_failures_and_its_notifications_wait(app, org, webhook, receiver, settings, now, client, alice):
    settings.CLACKS_CHANNEL_MAX_FAILURES = 3
    channel, _ = webhook
    receiver.status = 502
    fire_silence(app, now)
    for seconds in (0, 30, 90):
        delivery.deliver_due(now=now + timedelta(seconds=seconds))
    channel.refresh_from_db()
    assert not channel.is_active and channel.consecutive_failures == 3
    assert "3 deliveries failed in a row; the last: HTTP 502" == channel.disabled_reason
    assert delivery.deliver_due(now=now + timedelta(hours=1)).failed == 0  # nothing tried while disabled
    client.force_login(alice)
    assert "the channel hooks was disabled" in client.get(f"/orgs/{org.public_id}/apps/").content.decode()

    receiver.status = 200
    services.enable_channel(channel)
    assert delivery.deliver_due(now=now + timedelta(hours=1)).delivered == 1
    channel.refresh_from_db()
    assert channel.is_active and channel.consecutive_failures == 0


def test_a_refused_address_is_a_failed_attempt_without_a_connection(app, org, receiver, settings, now):
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = False
    services.create_channel(org, name="local", kind=ChannelKind.WEBHOOK, url=receiver.url)
    fire_silence(app, now)
    assert delivery.deliver_due(now=now).failed == 1
    attempt = Notification.objects.get().delivery_attempts.get()
    assert attempt.error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
    assert receiver.received == []


def test_the_slack_variant_posts_a_text_message(app, org, receiver, allow_private, now):
    services.create_channel(org, name="slack", kind=ChannelKind.SLACK, url=receiver.url)
    fire_silence(app, now)
    delivery.deliver_due(now=now)
    body = receiver.received[0].json()
    assert set(body) == {"text"}
    assert body["text"].startswith("[FIRING] stopped on my-cli: No events for 30 minutes")
    assert "|Open in Clacks>" in body["text"]


def test_send_test_is_delivered_by_the_next_run(org, webhook, receiver, now):
    channel, secret = webhook
    services.send_test(channel, now=now)
    assert delivery.deliver_due(now=now).delivered == 1
    received = receiver.received[0]
    assert received.json()["type"] == "test" and verify(secret, received)


def test_two_delivery_runs_at_once_send_a_notification_once(app, webhook, receiver, now):
    fire_silence(app, now)
    pk = Notification.objects.get().pk
    assert delivery.claim(pk, now=now)
    assert not delivery.claim(pk, now=now + timedelta(seconds=1))  # the other runner
    assert delivery.deliver_due(now=now + timedelta(seconds=1)).delivered == 0
