"""Admin pages: first run, accounts, organizations, members, apps, credentials, retention, audit.

Every page looks its organization up through organizations.access (404 for
non-members, 403 below the role the page needs). Views parse, call one domain
function and render; the work is in organizations.services and telemetry.retention.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from organizations import forms, services
from organizations.access import get_app_access, get_org_access
from organizations.context_processors import LAST_ORG_SESSION_KEY
from organizations.models import App, AuditEntry, Credential, Invitation, Membership, Organization, Role
# Pages that show events (last event received, retention previews) read them
# through telemetry; the organizations models and services stay free of it.
from telemetry import retention
from telemetry.models import Event

logger = logging.getLogger(__name__)

# Where a freshly issued token and secret wait for the one page view that shows them.
ISSUED_SESSION_KEY = "clacks_issued_credential"


def _no_store(response: HttpResponse) -> HttpResponse:
    """Pages that show a secret must not be kept by the browser or a proxy."""
    response["Cache-Control"] = "no-store"
    return response


def _posted(request: HttpRequest):
    """The POST data to bind a form to, or None on GET (an empty POST still binds)."""
    return request.POST if request.method == "POST" else None


def _form_errors(request: HttpRequest, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


# --- First run and accounts ----------------------------------------------------------------


def _no_user_yet() -> bool:
    return not get_user_model().objects.exists()


@never_cache
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """The one-time "create the first admin" page; 404 once any user exists."""
    if not _no_user_yet():
        raise Http404("Setup is complete.")
    form = forms.SetupForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            user, organization = services.create_first_admin(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                organization_name=form.cleaned_data["organization_name"],
            )
        except services.SetupClosed:
            raise Http404("Setup is complete.") from None
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if organization is None:
            messages.success(request, "Welcome to Clacks. Create an organization to add your first app.")
            return redirect("organizations:org_list")
        messages.success(request, f"Welcome to Clacks. {organization.name} is ready: create your first app.")
        return redirect("organizations:app_create", org_id=organization.public_id)
    return render(request, "accounts/setup.html", {"form": form})


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    form_class = forms.ThrottledLoginForm
    redirect_authenticated_user = True

    def dispatch(self, request, *args, **kwargs):
        if _no_user_yet():
            return redirect("organizations:setup")
        return super().dispatch(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are signed out.")
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    form_class = forms.PasswordForm
    success_url = reverse_lazy("organizations:password_change")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, "Your password is changed.")
        return response


# --- Organizations ---------------------------------------------------------------------------


def org_home_url(organization: Organization) -> str:
    """The organization's overview page (the analytics pages)."""
    return reverse("dashboard:org_overview", kwargs={"org_id": organization.public_id})


@login_required
@require_http_methods(["GET", "POST"])
def org_list(request: HttpRequest) -> HttpResponse:
    form = forms.OrganizationCreateForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        organization = services.create_organization(name=form.cleaned_data["name"], owner=request.user)
        services.record_audit(organization, action="organization.create", target=organization.public_id, actor=request.user)
        messages.success(request, f"{organization.name} is created. Add its first app.")
        return redirect("organizations:app_create", org_id=organization.public_id)
    memberships = (
        Membership.objects.filter(user=request.user).select_related("organization").order_by("organization__name")
    )
    rows = [
        {"membership": m, "organization": m.organization, "apps": m.organization.apps.count()} for m in memberships
    ]
    return render(request, "organizations/org_list.html", {"rows": rows, "form": form})


def _retention_rows(organization: Organization) -> list[dict]:
    return [
        {"app": app, "days": app.effective_retention_days, "override": app.retention_override}
        for app in organization.apps.select_related("organization").order_by("name")
    ]


def _retention_preview(form: forms.RetentionForm, count) -> dict:
    return {"days": form.days, "inherit": form.inherit, "count": count(form)}


def _org_settings_page(request: HttpRequest, access, *, settings_form=None, retention_form=None, preview=None, status=200):
    organization = access.organization
    now = timezone.now()
    return render(
        request,
        "organizations/org_settings.html",
        {
            "organization": organization,
            "access": access,
            "settings_form": settings_form
            or forms.OrganizationSettingsForm(
                initial={"name": organization.name, "tier": organization.tier, "is_active": organization.is_active}
            ),
            "retention_form": retention_form
            or forms.RetentionForm(initial=forms.RetentionForm.initial_for(organization.retention_days)),
            "preview": preview,
            "current_count": retention.preview_organization_default(
                organization, days=organization.retention_days, now=now
            ),
            "retention_rows": _retention_rows(organization),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def org_settings(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    organization = access.organization
    if request.method == "GET":
        return _org_settings_page(request, access)
    form = forms.OrganizationSettingsForm(request.POST)
    if not form.is_valid():
        return _org_settings_page(request, access, settings_form=form, status=400)
    changed = services.update_organization(organization, by=request.user, **form.cleaned_data)
    if not changed:
        messages.info(request, "Nothing changed.")
    elif "is_active" in changed:
        state = "enabled" if organization.is_active else "disabled: ingest for its apps now answers 403"
        messages.success(request, f"{organization.name} is {state}.")
    else:
        messages.success(request, "Organization settings saved.")
    return redirect("organizations:org_settings", org_id=organization.public_id)


@login_required
@require_POST
def org_retention(request: HttpRequest, org_id: str) -> HttpResponse:
    """Save the default retention, or with `preview` only count what it would delete."""
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    organization = access.organization
    form = forms.RetentionForm(request.POST)
    if not form.is_valid():
        return _org_settings_page(request, access, retention_form=form, status=400)
    if "preview" in request.POST:
        now = timezone.now()
        preview = _retention_preview(
            form, lambda f: retention.preview_organization_default(organization, days=f.days, now=now)
        )
        return _org_settings_page(request, access, retention_form=form, preview=preview)
    if services.set_organization_retention(organization, days=form.days, by=request.user):
        kept = "forever" if form.days is None else f"for {form.days} days"
        messages.success(
            request,
            f"Events are now kept {kept} by default. Older events are deleted the next time retention runs.",
        )
    else:
        messages.info(request, "Retention unchanged.")
    return redirect("organizations:org_settings", org_id=organization.public_id)


# --- Members and invitations -----------------------------------------------------------------


def _invite_url(request: HttpRequest, invitation: Invitation) -> str:
    return request.build_absolute_uri(reverse("organizations:invite_accept", kwargs={"token": invitation.token}))


@login_required
def members(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id)
    organization = access.organization
    memberships = organization.memberships.select_related("user").order_by("user__username")
    owners = sum(1 for m in memberships if m.role == Role.OWNER)
    rows = [
        {
            "membership": m,
            "role_form": forms.RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}"),
            "last_owner": m.role == Role.OWNER and owners == 1,
        }
        for m in memberships
    ]
    invitations = []
    if access.at_least(Role.OWNER):
        now = timezone.now()
        pending = organization.invitations.filter(accepted_at__isnull=True).order_by("-created_at")
        invitations = [
            {"invitation": i, "url": _invite_url(request, i), "expired": not i.is_usable(now=now)} for i in pending
        ]
    return render(
        request,
        "organizations/members.html",
        {
            "organization": organization,
            "access": access,
            "rows": rows,
            "invitations": invitations,
            "invite_form": forms.InviteForm(),
            "new_invitation": request.session.pop("clacks_new_invitation", None),
        },
    )


@login_required
@require_POST
def member_invite(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    form = forms.InviteForm(request.POST)
    if form.is_valid():
        invitation = services.invite_member(
            access.organization,
            role=form.cleaned_data["role"],
            email=form.cleaned_data["email"],
            by=request.user,
            valid_for=timezone.timedelta(days=form.cleaned_data["valid_days"]),
        )
        request.session["clacks_new_invitation"] = invitation.pk
        messages.success(request, "Invitation created. Copy the link below and send it to the person you invite.")
    else:
        _form_errors(request, form)
    return redirect("organizations:members", org_id=access.organization.public_id)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, org_id: str, invitation_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    invitation = access.organization.invitations.filter(pk=invitation_id, accepted_at__isnull=True).first()
    if invitation is None:
        raise Http404("No such invitation.")
    if forms.ConfirmForm(request.POST).is_valid():
        services.revoke_invitation(invitation, by=request.user)
        messages.success(request, "Invitation revoked; its link no longer works.")
    return redirect("organizations:members", org_id=access.organization.public_id)


def _membership(access, member_id: int) -> Membership:
    membership = access.organization.memberships.select_related("user", "organization").filter(pk=member_id).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


@login_required
@require_POST
def member_role(request: HttpRequest, org_id: str, member_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    membership = _membership(access, member_id)
    form = forms.RoleForm(request.POST, prefix=f"m{membership.pk}")
    if not form.is_valid():
        _form_errors(request, form)
    else:
        try:
            if services.change_role(membership, role=form.cleaned_data["role"], by=request.user):
                messages.success(
                    request, f"{membership.user.get_username()} is now {membership.get_role_display().lower()}."
                )
            else:
                messages.info(request, "Role unchanged.")
        except services.LastOwnerError as exc:
            messages.error(request, str(exc))
    if membership.user_id == request.user.pk and membership.role != Role.OWNER:
        return redirect("organizations:app_list", org_id=access.organization.public_id)
    return redirect("organizations:members", org_id=access.organization.public_id)


@login_required
@require_POST
def member_remove(request: HttpRequest, org_id: str, member_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    membership = _membership(access, member_id)
    if not forms.ConfirmForm(request.POST).is_valid():
        return redirect("organizations:members", org_id=access.organization.public_id)
    try:
        services.remove_member(membership, by=request.user)
    except services.LastOwnerError as exc:
        messages.error(request, str(exc))
        return redirect("organizations:members", org_id=access.organization.public_id)
    messages.success(request, f"{membership.user.get_username()} is removed from {access.organization.name}.")
    if membership.user_id == request.user.pk:
        return redirect("organizations:org_list")
    return redirect("organizations:members", org_id=access.organization.public_id)


@never_cache
@require_http_methods(["GET", "POST"])
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Join an organization by invitation: sign up when anonymous, one click when signed in."""
    invitation = Invitation.objects.select_related("organization").filter(token=token).first()
    if invitation is None:
        raise Http404("No such invitation.")
    if not invitation.is_usable():
        return render(request, "accounts/invite_unusable.html", {"invitation": invitation}, status=410)
    organization = invitation.organization
    user = request.user if request.user.is_authenticated else None
    already = user is not None and Membership.objects.filter(organization=organization, user=user).exists()
    signup = forms.SignupForm(_posted(request)) if user is None else None
    confirm = forms.ConfirmForm(_posted(request))

    if request.method == "POST" and not already:
        if user is None and signup.is_valid():
            user = signup.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if user is not None and confirm.is_valid():
            try:
                services.accept_invitation(invitation, user=user)
            except services.InvitationUnusable:
                return render(request, "accounts/invite_unusable.html", {"invitation": invitation}, status=410)
            except services.AlreadyMember:
                already = True
            else:
                messages.success(request, f"You joined {organization.name} as {invitation.get_role_display().lower()}.")
                return redirect("organizations:app_list", org_id=organization.public_id)
    return render(
        request,
        "accounts/invite_accept.html",
        {"invitation": invitation, "organization": organization, "signup": signup, "already": already},
    )


# --- Audit log -------------------------------------------------------------------------------


@login_required
def audit(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    entries = AuditEntry.objects.filter(organization=access.organization).select_related("actor")
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "organizations/audit.html", {"organization": access.organization, "access": access, "page": page})


# --- Apps ------------------------------------------------------------------------------------


def last_event(app: App) -> dict | None:
    """The app's newest event by timestamp (its time and when it arrived), or None.

    One query reading the end of the (app, timestamp) index."""
    return Event.objects.filter(app=app).order_by("-timestamp").values("timestamp", "received_at", "event_type").first()


@login_required
def app_list(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id)
    apps = list(access.organization.apps.select_related("organization").order_by("name"))
    rows = [{"app": app, "last_event": last_event(app)} for app in apps]
    return render(request, "organizations/app_list.html", {"organization": access.organization, "access": access, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def app_create(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    form = forms.AppNameForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        app, issued = services.create_app(organization=access.organization, name=form.cleaned_data["name"], by=request.user)
        _remember_issued(request, issued)
        messages.success(request, f"{app.name} is created. Copy its token and secret now: the token is shown only once.")
        return redirect("organizations:app_credentials", org_id=access.organization.public_id, app_id=app.public_id)
    return render(request, "organizations/app_create.html", {"organization": access.organization, "access": access, "form": form})


def _remember_issued(request: HttpRequest, issued: services.IssuedCredential) -> None:
    # Kept in the session only until the credentials page shows it once (the next
    # request), so reloading that page, or going back, never shows the token again.
    request.session[ISSUED_SESSION_KEY] = {
        "credential": issued.credential.pk,
        "token": issued.token,
        "secret": issued.secret,
    }


def _snippet_context(app: App, *, token: str | None, secret: str | None, token_prefix: str | None) -> dict:
    endpoint = settings.CLACKS_PUBLIC_URL
    return {
        "endpoint": endpoint,
        "ingest_url": endpoint + app.ingest_path,
        # The SDK accepts only lowercase letters, digits, "-" and "_" in a service name.
        "service_name": slugify(app.name) or "my-app",
        "env_token": token or (f"<the token shown when it was issued; it starts {token_prefix}>" if token_prefix else "<rotate to issue a token>"),
        "env_secret": secret or "<reveal the secret above and paste it here>",
    }


def _credentials_page(request: HttpRequest, app: App, access, *, revealed: dict | None = None, status: int = 200) -> HttpResponse:
    issued = request.session.pop(ISSUED_SESSION_KEY, None)
    active = list(app.credentials.active().select_related("created_by").order_by("-created_at", "-pk"))
    if issued and not any(c.pk == issued["credential"] for c in active):
        issued = None  # revoked in the meantime, or another app's
    revoked = list(app.credentials.filter(revoked_at__isnull=False).order_by("-revoked_at")[:5])
    newest = active[0] if active else None
    # The snippet carries the newest set's values when this page view knows them.
    snippet_token = snippet_secret = None
    if newest is not None and issued and issued["credential"] == newest.pk:
        snippet_token, snippet_secret = issued["token"], issued["secret"]
    elif newest is not None and revealed and revealed["credential"] == newest.pk:
        snippet_secret = revealed["secret"]
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "active": active,
        "revoked": revoked,
        "issued": issued,
        "revealed": revealed,
        "last_event": last_event(app),
        "only_one_active": len(active) == 1,
        **_snippet_context(
            app,
            token=snippet_token,
            secret=snippet_secret,
            token_prefix=newest.token_prefix if newest else None,
        ),
    }
    return _no_store(render(request, "organizations/app_credentials.html", context, status=status))


@login_required
def app_credentials(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    return _credentials_page(request, app, access)


@login_required
@require_POST
def credential_reveal(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Show one credential's secret, recorded in the audit log. A POST, so it is always deliberate."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.CredentialForm(request.POST, app=app)
    if not form.is_valid():
        messages.error(request, "That credential set is no longer active.")
        return redirect("organizations:app_credentials", org_id=org_id, app_id=app_id)
    credential: Credential = form.cleaned_data["credential"]
    secret = services.reveal_secret(credential, by=request.user)
    return _credentials_page(request, app, access, revealed={"credential": credential.pk, "secret": secret})


@login_required
@require_POST
def credentials_rotate(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if forms.ConfirmForm(request.POST).is_valid():
        issued = services.rotate_credentials(app, by=request.user)
        _remember_issued(request, issued)
        messages.success(
            request,
            "New credentials issued. The previous set keeps working until you revoke it, "
            "so you can update your clients first.",
        )
    return redirect("organizations:app_credentials", org_id=org_id, app_id=app_id)


@login_required
@require_POST
def credential_revoke(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.CredentialForm(request.POST, app=app)
    if form.is_valid():
        credential = form.cleaned_data["credential"]
        services.revoke_credential(credential, by=request.user)
        messages.success(request, f"Credentials {credential.token_prefix}… are revoked; clients using them get 401 now.")
    else:
        messages.error(request, "That credential set is already revoked.")
    return redirect("organizations:app_credentials", org_id=org_id, app_id=app_id)


# --- App settings ----------------------------------------------------------------------------


def _app_settings_page(request: HttpRequest, app: App, access, *, status: int = 200, preview=None, **bound) -> HttpResponse:
    now = timezone.now()
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "name_form": bound.get("name_form") or forms.AppNameForm(initial={"name": app.name}),
        "delete_form": bound.get("delete_form") or forms.DeleteAppForm(app_name=app.name),
        "retention_form": bound.get("retention_form")
        or forms.RetentionForm(
            allow_inherit=True,
            organization_days=app.organization.retention_days,
            initial=forms.RetentionForm.initial_for(app.retention_days, inherit=not app.retention_override),
        ),
        "preview": preview,
        "current_count": retention.events_past_retention(app, now=now),
        "effective_days": app.effective_retention_days,
        "event_count": retention.stored_events(app),
    }
    return render(request, "organizations/app_settings.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def app_settings(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if request.method == "POST":
        form = forms.AppNameForm(request.POST)
        if not form.is_valid():
            return _app_settings_page(request, app, access, name_form=form, status=400)
        if services.rename_app(app, name=form.cleaned_data["name"], by=request.user):
            messages.success(request, f"The app is renamed to {app.name}.")
        else:
            messages.info(request, "Name unchanged.")
        return redirect("organizations:app_settings", org_id=org_id, app_id=app_id)
    return _app_settings_page(request, app, access)


@login_required
@require_POST
def app_state(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.AppStateForm(request.POST)
    if form.is_valid():
        active = form.cleaned_data["is_active"]
        if services.set_app_active(app, active=active, by=request.user):
            if active:
                messages.success(request, f"{app.name} is enabled; ingest accepts its events again.")
            else:
                messages.success(request, f"{app.name} is disabled; ingest answers 403 to its clients.")
    return redirect("organizations:app_settings", org_id=org_id, app_id=app_id)


@login_required
@require_POST
def app_retention(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Save the app's retention, or with `preview` only count what it would delete."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.RetentionForm(request.POST, allow_inherit=True, organization_days=app.organization.retention_days)
    if not form.is_valid():
        return _app_settings_page(request, app, access, retention_form=form, status=400)
    if "preview" in request.POST:
        now = timezone.now()
        days = app.organization.retention_days if form.inherit else form.days
        preview = {"days": days, "inherit": form.inherit, "count": retention.count_older_than(app, days=days, now=now)}
        return _app_settings_page(request, app, access, retention_form=form, preview=preview)
    if services.set_app_retention(app, override=not form.inherit, days=form.days, by=request.user):
        days = app.effective_retention_days
        kept = "forever" if days is None else f"for {days} days"
        source = "the organization's default" if form.inherit else "this app's own setting"
        messages.success(
            request, f"{app.name} now keeps events {kept} ({source}). Older events go the next time retention runs."
        )
    else:
        messages.info(request, "Retention unchanged.")
    return redirect("organizations:app_settings", org_id=org_id, app_id=app_id)


@login_required
@require_POST
def app_delete(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.DeleteAppForm(request.POST, app_name=app.name)
    if not form.is_valid():
        return _app_settings_page(request, app, access, delete_form=form, status=400)
    name = app.name
    deleted = services.delete_app(app, by=request.user)
    messages.success(request, f"{name} and its {deleted} events are deleted.")
    return redirect("organizations:app_list", org_id=org_id)


# --- Where "/" leads ---------------------------------------------------------------------------


def home_redirect(request: HttpRequest) -> HttpResponse:
    """Send a visitor of "/" where they belong: first-run setup, sign-in, the organization
    they used last (or their first), or the organization list when they have none."""
    if _no_user_yet():
        return redirect("organizations:setup")
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    last = request.session.get(LAST_ORG_SESSION_KEY)
    chosen = next((m for m in memberships if m.organization.public_id == last), None)
    if chosen is None:
        chosen = memberships.order_by("organization__name").first()
    if chosen is None:
        return redirect("organizations:org_list")
    return redirect(org_home_url(chosen.organization))
