from django.contrib import admin

from telemetry import limits
from telemetry.models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["tier", "requests_per_minute_in_force", "monthly_events_in_force", "updated_at"]
    fields = ["tier", "requests_per_minute", "monthly_events"]
    readonly_fields = ["tier"]

    def has_add_permission(self, request) -> bool:
        return False  # one row per tier, created by the migration or below

    def changelist_view(self, request, extra_context=None):
        limits.ensure_plans()  # a tier whose row went missing reappears, following its settings
        return super().changelist_view(request, extra_context)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="requests per app per minute")
    def requests_per_minute_in_force(self, plan: Plan) -> str:
        value = limits.plan_limits(plan.tier).requests_per_minute
        return f"{value:,}" + ("" if plan.requests_per_minute is not None else " (setting)")

    @admin.display(description="events per month")
    def monthly_events_in_force(self, plan: Plan) -> str:
        value = limits.plan_limits(plan.tier).monthly_events
        shown = "no quota" if value is None else f"{value:,}"
        return shown + ("" if plan.monthly_events is not None else " (setting)")

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        # This process applies the change at once; other processes and instances
        # re-read plans within CLACKS_APP_CACHE_SECONDS.
        limits.forget_plans()
