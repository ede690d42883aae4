"""Read-mostly admin views of the alert tables, for an operator looking into a delivery;
rules and channels are managed on the dashboard's pages (audited there)."""

from django.contrib import admin
from django.db import models

from alerts.models import Channel, DeliveryAttempt, Notification, Rule, Transition


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "app", "kind", "state", "state_since", "is_active"]
    list_filter = ["kind", "state", "is_active"]
    readonly_fields = ["state", "state_since", "last_value", "evaluated_minute"]


@admin.register(Transition)
class TransitionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "app", "rule_name", "to_state", "value", "threshold"]
    list_filter = ["to_state", "rule_kind"]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "kind", "is_active", "consecutive_failures", "disabled_at"]
    list_filter = ["kind", "is_active"]
    exclude = ["secret_encrypted"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # Django 6's default, without its warning


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["started_at", "ok", "status_code", "latency_ms", "response_excerpt", "error"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["idempotency_key", "channel", "email_to", "kind", "status", "attempts", "next_attempt_at", "delivered_at"]
    list_filter = ["status", "kind"]
    readonly_fields = ["idempotency_key", "payload", "attempts", "lease_until", "delivered_at", "last_error", "created_at"]
    inlines = [AttemptInline]
