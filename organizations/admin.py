"""The Django admin for superusers. Secrets and token hashes are never shown or edited here."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from organizations.models import App, AuditEntry, Credential, Invitation, Membership, Organization, SsoDomain, SsoIdentity
from organizations.passwords import ResetNotAllowed, make_reset_link_for_user
from organizations.services import forget_cached_app

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class ClacksUserAdmin(UserAdmin):
    """Django's user admin, plus a one-time password-reset link for a user who forgot theirs."""

    actions = ["password_reset_link"]

    @admin.action(description="Make a one-time password-reset link")
    def password_reset_link(self, request, queryset):
        for user in queryset[:10]:
            try:
                path, expires_at = make_reset_link_for_user(user, by=request.user)
            except ResetNotAllowed as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            self.message_user(
                request,
                f"Reset link for {user.get_username()} (works once, until {expires_at:%Y-%m-%d %H:%M} UTC; "
                f"send it yourself): {request.build_absolute_uri(path)}",
                messages.SUCCESS,
            )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "tier", "is_active", "retention_days", "created_at"]
    list_filter = ["tier", "is_active"]
    search_fields = ["name", "public_id"]
    readonly_fields = ["public_id", "created_at"]
    inlines = [MembershipInline]

    def has_add_permission(self, request):
        return False  # created at /orgs/, which gives it a public id and an owner

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Disabling here must reach ingest at once, as it does from the dashboard.
        for app in obj.apps.select_related("organization"):
            forget_cached_app(app)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organization__name", "organization__public_id"]
    autocomplete_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["organization", "role", "email", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["organization__name", "email"]
    # The token is the invitation's only credential; it is shown on the members page to owners.
    exclude = ["token"]
    readonly_fields = ["organization", "created_by", "created_at", "accepted_at", "accepted_by"]

    def has_add_permission(self, request):
        return False  # invitations are created on the members page, which shows the link


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0
    fields = ["token_prefix", "created_at", "created_by", "revoked_at"]
    readonly_fields = ["token_prefix", "created_at", "created_by"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # issued on the credentials page, which shows the token once


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "organization", "is_active", "retention_override", "retention_days", "retention_last_run_at"]
    list_filter = ["is_active", "retention_override"]
    search_fields = ["name", "public_id", "organization__name"]
    readonly_fields = ["public_id", "created_at", "retention_last_run_at"]
    list_select_related = ["organization"]
    inlines = [CredentialInline]

    def has_add_permission(self, request):
        return False  # created on the apps page (or manage.py create_app), which issues credentials

    def has_delete_permission(self, request, obj=None):
        # Deleted on the app's settings page, which refuses its ingest first and
        # deletes its events in batches (telemetry.storage); a delete here would
        # load every event of the app to cascade in one transaction.
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        forget_cached_app(obj)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        forget_cached_app(form.instance)  # a credential revoked here stops working at once


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["target", "organization__name", "actor__username"]
    list_select_related = ["organization", "actor"]

    # The audit log is a record: nobody edits or deletes it here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SsoIdentity)
class SsoIdentityAdmin(admin.ModelAdmin):
    """Which account each provider subject signs in to. Deleting a row makes that
    person's next single sign-on create a new account; nothing is edited here."""

    list_display = ["user", "issuer", "subject", "created_at", "last_sign_in_at"]
    search_fields = ["user__username", "user__email", "subject"]
    list_select_related = ["user"]
    readonly_fields = ["user", "issuer", "subject", "created_at", "last_sign_in_at"]

    def has_add_permission(self, request):
        return False  # made by the first sign-in (organizations.sso)


@admin.register(SsoDomain)
class SsoDomainAdmin(admin.ModelAdmin):
    """Read only: owners change the rules on their organization's settings, where it is audited."""

    list_display = ["domain", "organization", "role", "created_by", "created_at"]
    search_fields = ["domain", "organization__name", "organization__public_id"]
    list_select_related = ["organization", "created_by"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
