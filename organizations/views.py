"""Admin pages: first run, accounts, the organization list, members, invitations, audit, new apps.

Every page looks its organization up through organizations.access (404 for
non-members, 403 below the role the page needs). Views parse, call one domain
function and render; the work is in organizations.services. Pages that show
event figures (the app list, credentials, app and organization settings) are
in dashboard.manage_views: this app imports no other.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from organizations import audit as audit_log
from organizations import forms, lockout, passwords, services, sessions, timezones, twofactor
from organizations.access import RoleTooLow, get_org_access
from organizations.context_processors import LAST_ORG_SESSION_KEY
from organizations.models import AuditEntry, Invitation, Membership, Organization, Role

logger = logging.getLogger(__name__)

# Where a freshly issued token and secret wait for the one page view that shows them.
ISSUED_SESSION_KEY = "clacks_issued_credential"


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
    form_class = forms.LoginForm
    redirect_authenticated_user = True

    def dispatch(self, request, *args, **kwargs):
        if _no_user_yet():
            return redirect("organizations:setup")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        # "Forgot your password?" mails a link only when the server can send mail.
        return super().get_context_data(**kwargs, password_reset_by_email=bool(settings.EMAIL_HOST))


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
        # Django already refuses the other sessions (their password hash is stale); ending
        # them also takes them off the session list. This one gets a new key: note it again.
        sessions.end_other_sessions(self.request.user, keep=self.request.session.session_key)
        sessions.record(self.request, self.request.user)
        twofactor.audit_user_change(self.request.user, action="password.change")
        messages.success(self.request, "Your password is changed. Your other sessions are signed out.")
        return response


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """The person's own settings: the time zone every page shows times in (docs/time.md)."""
    browser_zone = request.COOKIES.get(timezones.COOKIE, "")
    browser_zone = browser_zone if timezones.zone_named(browser_zone) else ""
    current = timezones.profile_time_zone(request.user)
    form = forms.TimeZoneForm(_posted(request), initial={"time_zone": current}, browser_zone=browser_zone)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["time_zone"]
        timezones.set_profile_time_zone(request.user, name=name)
        request.session[timezones.SESSION_KEY] = name
        messages.success(request, f"Times are now shown in {name}." if name else "Times now follow your browser's time zone.")
        return redirect("organizations:profile")
    return render(
        request,
        "accounts/profile.html",
        {"form": form, "now": timezone.now(), "zone_words": timezones.describe(timezone.now()),
         "zone_source": getattr(request, "time_zone_source", "default")},
    )


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


# --- Members and invitations -----------------------------------------------------------------


def _invite_url(request: HttpRequest, invitation: Invitation) -> str:
    return request.build_absolute_uri(reverse("organizations:invite_accept", kwargs={"token": invitation.token}))


@login_required
def members(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id)
    organization = access.organization
    memberships = list(organization.memberships.select_related("user").order_by("user__username"))
    owners = sum(1 for m in memberships if m.role == Role.OWNER)
    with_two_factor = twofactor.users_with_two_factor([m.user_id for m in memberships])
    manage = access.at_least(Role.OWNER)
    locked = lockout.locked_usernames(m.user.get_username() for m in memberships) if manage else set()
    rows = [
        {
            "membership": m,
            "role_form": forms.RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}"),
            "last_owner": m.role == Role.OWNER and owners == 1,
            "two_factor": m.user_id in with_two_factor,
            "locked": m.user.get_username() in locked,
        }
        for m in memberships
    ]
    reset_link = request.session.pop("clacks_reset_link", None)
    if reset_link:
        reset_link["expires_at"] = datetime.fromisoformat(reset_link["expires_at"])
    invitations = []
    if manage:
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
            "require_form": forms.RequireTwoFactorForm(initial={"require_two_factor": organization.require_two_factor}),
            "may_reset": manage or request.user.is_superuser,
            "new_invitation": request.session.pop("clacks_new_invitation", None),
            "reset_link": reset_link,
        },
    )


@login_required
@require_POST
def require_two_factor(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    form = forms.RequireTwoFactorForm(request.POST)
    if form.is_valid():
        required = form.cleaned_data["require_two_factor"]
        if twofactor.set_required(access.organization, required=required, by=request.user):
            messages.success(
                request,
                "Two-factor sign-in is required: members without it set it up at their next sign-in."
                if required
                else "Two-factor sign-in is no longer required.",
            )
    return redirect("organizations:members", org_id=access.organization.public_id)


@login_required
@require_POST
def member_unlock(request: HttpRequest, org_id: str, member_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    membership = _membership(access, member_id)
    if forms.ConfirmForm(request.POST).is_valid():
        lockout.unlock(membership, by=request.user)
        messages.success(request, f"{membership.user.get_username()} can sign in again.")
    return redirect("organizations:members", org_id=access.organization.public_id)


@login_required
@require_POST
def member_reset_link(request: HttpRequest, org_id: str, member_id: int) -> HttpResponse:
    """A one-time password-reset link for a member, shown once to the owner (or a superuser)."""
    access = get_org_access(request.user, org_id)
    if not (access.at_least(Role.OWNER) or request.user.is_superuser):
        raise PermissionDenied("Only owners can make password-reset links.")
    membership = _membership(access, member_id)
    if forms.ConfirmForm(request.POST).is_valid():
        try:
            path, expires_at = passwords.make_reset_link(membership, by=request.user)
        except passwords.ResetNotAllowed as exc:
            messages.error(request, str(exc))
        else:
            request.session["clacks_reset_link"] = {
                "username": membership.user.get_username(),
                "url": request.build_absolute_uri(path),
                "expires_at": expires_at.isoformat(),
            }
            messages.success(
                request,
                f"Password-reset link for {membership.user.get_username()} created. "
                "Send it to them yourself: it works once.",
            )
    return redirect("organizations:members", org_id=access.organization.public_id)


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
        return redirect("dashboard:app_list", org_id=access.organization.public_id)
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
                # Viewers read analytics; admins and owners start where apps are managed.
                if invitation.role == Role.VIEWER:
                    return redirect(org_home_url(organization))
                return redirect("dashboard:app_list", org_id=organization.public_id)
    return render(
        request,
        "accounts/invite_accept.html",
        {"invitation": invitation, "organization": organization, "signup": signup, "already": already},
    )


# --- Audit log -------------------------------------------------------------------------------


@login_required
def audit(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    organization = access.organization
    kind, person = request.GET.get("action", ""), request.GET.get("person", "")
    entries = audit_log.filter_entries(organization, kind=kind, person=person)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    filters = urlencode([(name, value) for name, value in (("action", kind), ("person", person)) if value])
    return render(
        request,
        "organizations/audit.html",
        {
            "organization": organization,
            "access": access,
            "page": page,
            "lines": audit_log.lines(organization, page.object_list),
            "kinds": [(value, label) for value, (label, _) in audit_log.KINDS.items()],
            "people": audit_log.people(organization),
            "kind": kind,
            "person": person,
            "filters": filters,
        },
    )


# --- Apps ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def app_create(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    form = forms.AppNameForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        app, issued = services.create_app(organization=access.organization, name=form.cleaned_data["name"], by=request.user)
        remember_issued(request, issued)
        messages.success(request, f"{app.name} is created. Copy its token and secret now: the token is shown only once.")
        return redirect("dashboard:app_credentials", org_id=access.organization.public_id, app_id=app.public_id)
    return render(request, "organizations/app_create.html", {"organization": access.organization, "access": access, "form": form})


def remember_issued(request: HttpRequest, issued: services.IssuedCredential) -> None:
    """Keep a new token and secret for the credentials page (dashboard.manage_views) to show once.

    Kept in the session only until that page pops it (the next request), so
    reloading the page, or going back, never shows the token again."""
    request.session[ISSUED_SESSION_KEY] = {
        "credential": issued.credential.pk,
        "token": issued.token,
        "secret": issued.secret,
    }


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


# --- "Not allowed" -----------------------------------------------------------------------------

ROLE_WORDS = {Role.VIEWER: "a viewer", Role.ADMIN: "an admin", Role.OWNER: "an owner"}


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    """The 403 page (config.urls handler403). Inside an organization it keeps the page's
    navigation and names the owners to ask for a higher role."""
    context: dict = {"organization": None}
    if isinstance(exception, RoleTooLow):
        access = exception.access
        owners = (
            Membership.objects.filter(organization=access.organization, role=Role.OWNER)
            .select_related("user")
            .order_by("user__username")
        )
        context = {
            "access": access,
            "organization": access.organization,
            "your_role": ROLE_WORDS[access.membership.role],
            "needed_role": ROLE_WORDS[exception.needed],
            "owners": [m.user.get_full_name() or m.user.get_username() for m in owners],
        }
    return render(request, "403.html", context, status=403)
