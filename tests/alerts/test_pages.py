"""The alert pages: rules created through the form (and audited), readable errors,
the history, channels with their secret shown once, "send test", and the banner of
a disabled channel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts import rules as alert_rules
from alerts import services
from alerts.models import Channel, ChannelKind, Notification, Rule, RuleKind
from organizations.models import AuditEntry
from tests.alerts.conftest import store

pytestmark = pytest.mark.django_db


def rules_url(app, name="alerts:rules", **kwargs):
    return reverse(name, kwargs={"org_id": app.organization.public_id, "app_id": app.public_id, **kwargs})


def test_an_admin_creates_a_silence_rule_through_the_form_and_it_is_audited(client, alice, app):
    client.force_login(alice)
    response = client.post(
        rules_url(app, "alerts:rule_new"),
        {"name": "Events stopped", "kind": "silence", "minutes": "15", "cooldown_minutes": "30", "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Alert rule “Events stopped” created" in response.content.decode()
    rule = Rule.objects.get(app=app)
    assert (rule.kind, rule.minutes, rule.cooldown_minutes, rule.is_active) == ("silence", 15, 30, True)
    entry = AuditEntry.objects.get(action="alert_rule.create")
    assert (entry.target, entry.actor, entry.details["minutes"]) == ("Events stopped", alice, 15)


def test_a_rule_missing_what_its_kind_needs_is_a_message_on_the_form(client, alice, app):
    client.force_login(alice)
    response = client.post(rules_url(app, "alerts:rule_new"), {"name": "x", "kind": "failure_rate", "cooldown_minutes": "0"})
    assert response.status_code == 400
    assert "Command failure rate needs this." in response.content.decode()
    assert not Rule.objects.exists()


def test_editing_and_deleting_a_rule_is_audited_and_keeps_its_history(client, alice, app):
    rule = services.create_rule(app, name="quiet", kind=RuleKind.SILENCE, minutes=10, cooldown_minutes=0)
    now = timezone.now()
    store(app, at=now - timedelta(minutes=30))
    alert_rules.evaluate_rules(now=now)
    client.force_login(alice)

    client.post(rules_url(app, "alerts:rule_edit", rule_id=rule.pk),
                {"name": "quiet", "kind": "silence", "minutes": "20", "cooldown_minutes": "0", "is_active": "on"})
    client.post(rules_url(app, "alerts:rule_delete", rule_id=rule.pk))

    assert list(AuditEntry.objects.filter(action__startswith="alert_rule").order_by("pk").values_list("action", flat=True)) == [
        "alert_rule.create", "alert_rule.update", "alert_rule.delete",
    ]  # fmt: skip
    history = client.get(rules_url(app, "alerts:history")).content.decode()
    assert "quiet" in history and "No events for 30 minutes" in history


def test_a_viewer_reads_rules_and_history_without_the_buttons(client, bob, app):
    services.create_rule(app, name="quiet", kind=RuleKind.SILENCE, minutes=10)
    client.force_login(bob)
    page = client.get(rules_url(app)).content.decode()
    assert "quiet" in page and "No events for 10 min" in page
    assert "New alert rule" not in page and "Delete" not in page


def test_a_new_webhook_channel_shows_its_signing_secret_once(client, alice, org):
    client.force_login(alice)
    response = client.post(
        reverse("alerts:channel_new", kwargs={"org_id": org.public_id}),
        {"name": "ops", "kind": "webhook", "url": "https://hooks.example.com/clacks"},
        follow=True,
    )
    channel = Channel.objects.get(organization=org)
    secret = channel.signing_secret()
    assert secret and secret in response.content.decode()
    again = client.get(reverse("alerts:channel_detail", kwargs={"org_id": org.public_id, "channel_id": channel.pk}))
    assert secret not in again.content.decode()
    assert AuditEntry.objects.filter(action="alert_channel.create", target="ops").exists()


def test_email_channels_are_offered_only_when_smtp_is_configured(client, alice, org, settings):
    client.force_login(alice)
    url = reverse("alerts:channel_new", kwargs={"org_id": org.public_id})
    settings.EMAIL_HOST = ""
    assert 'value="email"' not in client.get(url).content.decode()
    refused = client.post(url, {"name": "mail", "kind": "email", "recipients": "ops@example.com"})
    assert refused.status_code == 400 and not Channel.objects.exists()
    settings.EMAIL_HOST = "127.0.0.1"
    assert 'value="email"' in client.get(url).content.decode()


def test_send_test_stores_a_notification_and_sends_nothing_in_the_request(client, alice, org):
    channel, _ = services.create_channel(org, name="ops", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/x")
    client.force_login(alice)
    response = client.post(reverse("alerts:channel_test", kwargs={"org_id": org.public_id, "channel_id": channel.pk}), follow=True)
    assert "Test notification stored" in response.content.decode()
    notification = Notification.objects.get(channel=channel)
    assert (notification.kind, notification.status, notification.attempts) == ("test", "pending", 0)
    assert not notification.delivery_attempts.exists()


def test_a_disabled_channel_shows_a_banner_on_the_organizations_pages(client, alice, bob, org, app):
    channel, _ = services.create_channel(org, name="ops", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/x")
    Channel.objects.filter(pk=channel.pk).update(is_active=False, disabled_at=timezone.now(), disabled_reason="10 failed")
    client.force_login(alice)
    page = client.get(reverse("dashboard:app_list", kwargs={"org_id": org.public_id})).content.decode()
    assert "Notifications are not being delivered: the channel ops was disabled" in page
    client.force_login(bob)
    assert "the channel ops was disabled" in client.get(rules_url(app)).content.decode()


def test_editing_a_channel_changes_its_url_and_digest_and_is_audited(client, alice, org):
    channel, _ = services.create_channel(org, name="ops", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/x")
    client.force_login(alice)
    url = reverse("alerts:channel_detail", kwargs={"org_id": org.public_id, "channel_id": channel.pk})
    assert 'name="recipients"' not in client.get(url).content.decode()  # a webhook has no recipients

    response = client.post(url, {"name": "ops", "url": "https://hooks.example.com/y", "weekly_digest": "on"}, follow=True)

    assert "Channel “ops” saved." in response.content.decode()
    channel.refresh_from_db()
    assert (channel.url, channel.weekly_digest) == ("https://hooks.example.com/y", True)
    entry = AuditEntry.objects.get(action="alert_channel.update")
    assert entry.details["changed"] == ["url", "weekly_digest"]


def test_a_bad_channel_url_is_a_message_on_the_form(client, alice, org):
    client.force_login(alice)
    response = client.post(reverse("alerts:channel_new", kwargs={"org_id": org.public_id}), {"name": "ops", "kind": "webhook", "url": "not a url"})
    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()


def test_the_django_admin_lists_the_alert_tables(client, org, app):
    from tests.factories import make_user

    channel, _ = services.create_channel(org, name="ops", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/x")
    notification = services.send_test(channel)
    services.create_rule(app, name="quiet", kind=RuleKind.SILENCE, minutes=10)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    for model in ("rule", "transition", "channel", "notification"):
        assert client.get(f"/admin/alerts/{model}/").status_code == 200, model
    page = client.get(f"/admin/alerts/notification/{notification.pk}/change/")
    assert page.status_code == 200 and str(notification.idempotency_key) in page.content.decode()
    assert channel.secret_encrypted not in client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
