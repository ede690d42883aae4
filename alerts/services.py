"""Writes behind the alert pages: rules and channels created, changed and deleted
(each recorded in the organization's audit log), and test notifications stored."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts.models import Channel, ChannelKind, DigestSubscription, Notification, Rule, State
from alerts.rules import store_notifications
from organizations.crypto import encrypt_secret, new_hmac_secret
from organizations.models import App, Organization
from organizations.services import record_audit

RULE_FIELDS = ("name", "kind", "is_active", "minutes", "factor", "direction", "threshold", "min_count", "command", "cooldown_minutes")


def _rule_details(rule: Rule) -> dict:
    return {"app": rule.app.public_id, "kind": rule.kind, **{name: getattr(rule, name) for name in RULE_FIELDS if name not in ("name", "kind")}}


@transaction.atomic
def create_rule(app: App, *, by=None, **fields) -> Rule:
    rule = Rule.objects.create(app=app, created_by=by, **fields)
    record_audit(app.organization, action="alert_rule.create", target=rule.name, actor=by, details=_rule_details(rule))
    return rule


@transaction.atomic
def update_rule(rule: Rule, *, by=None, **fields) -> Rule:
    changed = [name for name, value in fields.items() if getattr(rule, name) != value]
    for name, value in fields.items():
        setattr(rule, name, value)
    if "kind" in changed or ("is_active" in changed and not rule.is_active):
        # Another condition: start again from ok (a resolve is not notified for a rule switched off).
        rule.state, rule.state_since = State.OK, timezone.now()
    rule.save()
    if changed:
        record_audit(rule.app.organization, action="alert_rule.update", target=rule.name, actor=by,
                     details={"changed": changed, **_rule_details(rule)})
    return rule


@transaction.atomic
def delete_rule(rule: Rule, *, by=None) -> None:
    record_audit(rule.app.organization, action="alert_rule.delete", target=rule.name, actor=by, details={"app": rule.app.public_id})
    rule.delete()


@transaction.atomic
def create_channel(organization: Organization, *, name: str, kind: str, url: str = "", recipients: str = "",
                   weekly_digest: bool = False, by=None) -> tuple[Channel, str]:
    """(channel, its signing secret: shown once on the page; webhooks only)."""
    secret = new_hmac_secret() if kind == ChannelKind.WEBHOOK else ""
    channel = Channel.objects.create(
        organization=organization, name=name, kind=kind, url=url, recipients=recipients, weekly_digest=weekly_digest,
        secret_encrypted=encrypt_secret(secret) if secret else "",
    )  # fmt: skip
    record_audit(organization, action="alert_channel.create", target=name, actor=by, details={"kind": kind, "url": url, "recipients": recipients, "weekly_digest": weekly_digest})
    return channel, secret


@transaction.atomic
def update_channel(channel: Channel, *, name: str, url: str = "", recipients: str = "", weekly_digest: bool = False,
                   by=None) -> None:
    values = {"name": name, "url": url, "recipients": recipients, "weekly_digest": weekly_digest}
    changed = [field for field, value in values.items() if getattr(channel, field) != value]
    for field, value in values.items():
        setattr(channel, field, value)
    channel.save(update_fields=list(values))
    if changed:
        record_audit(channel.organization, action="alert_channel.update", target=channel.name, actor=by,
                     details={"changed": changed, "url": url, "recipients": recipients, "weekly_digest": weekly_digest})


@transaction.atomic
def enable_channel(channel: Channel, *, by=None) -> None:
    Channel.objects.filter(pk=channel.pk).update(is_active=True, consecutive_failures=0, disabled_at=None, disabled_reason="")
    record_audit(channel.organization, action="alert_channel.enable", target=channel.name, actor=by)


@transaction.atomic
def delete_channel(channel: Channel, *, by=None) -> None:
    record_audit(channel.organization, action="alert_channel.delete", target=channel.name, actor=by, details={"kind": channel.kind})
    channel.delete()


def send_test(channel: Channel, *, by=None, now: datetime | None = None) -> Notification:
    """A test notification stored for the channel; the scheduler delivers it within seconds."""
    now = now or timezone.now()
    payload = {
        "type": "test",
        "subject": f"Test notification for {channel.name}",
        "message": f"This is a test notification from Clacks for the channel {channel.name} of {channel.organization.name}.",
        "organization": {"id": channel.organization.public_id, "name": channel.organization.name},
        "at": now.isoformat().replace("+00:00", "Z"),
    }
    (notification,) = store_notifications(channel.organization, payload=payload, kind="test", channels=[channel], now=now)
    return notification


def set_digest_subscription(organization: Organization, user, *, subscribed: bool) -> None:
    """The member gets (or stops getting) the organization's weekly digest at their account's address."""
    if subscribed:
        DigestSubscription.objects.get_or_create(organization=organization, user=user)
    else:
        DigestSubscription.objects.filter(organization=organization, user=user).delete()
