"""The alert rule and channel forms. One rule form for every kind: the page shows
each field with the kinds it applies to, and clean() asks for what the chosen kind needs."""

from __future__ import annotations

from django import forms
from django.conf import settings

from alerts.models import Channel, ChannelKind, Direction, Rule, RuleKind

TAKEN_RULE = "This app already has an alert rule with that name."
TAKEN_CHANNEL = "This organization already has a channel with that name."
WINDOWS = [(15, "15 minutes"), (60, "1 hour"), (360, "6 hours"), (1440, "24 hours")]
QUOTA_LEVELS = [(80, "80 %"), (100, "100 %")]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Give the rule a name."})
    kind = forms.ChoiceField(label="Alert when", choices=RuleKind.choices)
    minutes = forms.IntegerField(
        label="Period (minutes)", required=False, min_value=1, max_value=7 * 24 * 60,
        help_text="No events for: how many minutes without events (silence). Window: the last N minutes, counted in whole UTC hours (failure rate, new version).",
    )  # fmt: skip
    factor = forms.FloatField(label="Factor", required=False, min_value=1.01, max_value=1000,
                              help_text="Volume: e.g. 2 fires at twice (above) or half (below) the same hour a week earlier.")
    direction = forms.ChoiceField(label="Direction", required=False, choices=[("", "—"), *Direction.choices])
    threshold = forms.FloatField(label="Threshold (%)", required=False, min_value=0, max_value=100,
                                 help_text="Failure rate: percent of failed runs. Quota: 80 or 100 percent of the monthly quota.")
    min_count = forms.IntegerField(label="Minimum count", required=False, min_value=0, max_value=10**9, initial=0,
                                   help_text="Volume: events the busier hour needs. Failure rate: runs in the window.")
    command = forms.CharField(label="Command", required=False, max_length=200, help_text="Failure rate: one command, or empty for every command.")
    cooldown_minutes = forms.IntegerField(label="Cooldown (minutes)", min_value=0, max_value=7 * 24 * 60, initial=30,
                                          help_text="A firing rule stays firing at least this long, so a flapping condition does not notify over and over.")
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args, app, rule: Rule | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app, self.rule = app, rule
        if rule is not None and not self.is_bound:
            self.initial.update({name: getattr(rule, name) for name in self.fields})

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        need = {
            RuleKind.SILENCE: ["minutes"],
            RuleKind.VOLUME: ["factor", "direction"],
            RuleKind.FAILURE_RATE: ["threshold", "minutes"],
            RuleKind.NEW_VERSION: ["minutes"],
            RuleKind.QUOTA: ["threshold"],
        }.get(kind, [])
        for name in need:
            if data.get(name) in (None, ""):
                self.add_error(name, f"{RuleKind(kind).label} needs this.")
        if kind == RuleKind.QUOTA and data.get("threshold") not in (None, 80, 100):
            self.add_error("threshold", "Quota alerts fire at 80 or 100 percent.")
        if data.get("min_count") is None:
            data["min_count"] = 0
        name = data.get("name")
        if name:
            taken = Rule.objects.filter(app=self.app, name=name)
            if self.rule is not None:
                taken = taken.exclude(pk=self.rule.pk)
            if taken.exists():
                self.add_error("name", TAKEN_RULE)
        return data

    def rule_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"], "kind": data["kind"], "is_active": data["is_active"], "minutes": data.get("minutes"),
            "factor": data.get("factor"), "direction": data.get("direction") or "", "threshold": data.get("threshold"),
            "min_count": data.get("min_count") or 0, "command": data.get("command") or "",
            "cooldown_minutes": data["cooldown_minutes"],
        }  # fmt: skip


def channel_kinds() -> list[tuple[str, str]]:
    """Email only when the server can send it (EMAIL_HOST set)."""
    return [(value, label) for value, label in ChannelKind.choices if value != ChannelKind.EMAIL or settings.EMAIL_HOST]


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100, error_messages={"required": "Give the channel a name."})
    kind = forms.ChoiceField(label="Kind", choices=ChannelKind.choices)
    url = forms.URLField(label="URL", required=False, max_length=500, assume_scheme="https",
                         help_text="Webhooks: where Clacks POSTs the JSON (public addresses only).")
    recipients = forms.CharField(label="Recipients", required=False, max_length=500, help_text="Email: addresses, comma-separated.")
    weekly_digest = forms.BooleanField(label="Also send the weekly digest here", required=False,
                                       help_text="Every Monday (UTC): last week's events, users, top commands, failure rate and newest version per app.")

    def __init__(self, *args, organization, channel: Channel | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization, self.channel = organization, channel
        self.fields["kind"].choices = channel_kinds()
        if channel is not None:
            del self.fields["kind"]  # a channel keeps its kind: make another one instead
            del self.fields["url" if channel.kind == ChannelKind.EMAIL else "recipients"]
            if not self.is_bound:
                self.initial.update(name=channel.name, url=channel.url, recipients=channel.recipients, weekly_digest=channel.weekly_digest)

    @property
    def channel_kind(self) -> str:
        return self.channel.kind if self.channel is not None else self.cleaned_data.get("kind", "")

    def clean(self):
        data = super().clean()
        kind = self.channel_kind
        if kind in (ChannelKind.WEBHOOK, ChannelKind.SLACK) and not data.get("url"):
            self.add_error("url", "A webhook needs its URL.")
        if kind == ChannelKind.EMAIL:
            addresses = [item.strip() for item in (data.get("recipients") or "").split(",") if item.strip()]
            if not addresses:
                self.add_error("recipients", "Give at least one address.")
            for address in addresses:
                try:
                    forms.EmailField().clean(address)
                except forms.ValidationError:
                    self.add_error("recipients", f"{address} is not an email address.")
        name = data.get("name")
        if name:
            taken = Channel.objects.filter(organization=self.organization, name=name)
            if self.channel is not None:
                taken = taken.exclude(pk=self.channel.pk)
            if taken.exists():
                self.add_error("name", TAKEN_CHANNEL)
        return data


class DigestForm(forms.Form):
    subscribed = forms.BooleanField(label="Email me the weekly digest of this organization", required=False)
