"""The pages for managing apps and organizations that show event figures: the app
list (last event received), an app's credentials (its last event, to confirm the
SDK works), an app's settings (events stored, past retention, deleted with it)
and the organization's settings (what a retention change would delete).

They live here, not in organizations, because organizations imports no other
app (README, "Layout"). Each view checks access through
organizations.access, makes its change through organizations.services, and
reads its event figures from dashboard.stats, telemetry.retention and
telemetry.storage.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST

from dashboard import checklist, stats
from organizations import endpoints, forms, services
from organizations.access import OrgAccess, get_app_access, get_org_access
from organizations.models import App, Credential, Role
from organizations.views import ISSUED_SESSION_KEY, remember_issued
from telemetry import archive, retention, storage


def _no_store(response: HttpResponse) -> HttpResponse:
    """Pages that show a secret must not be kept by the browser or a proxy."""
    response["Cache-Control"] = "no-store"
    return response


# --- Organization settings -----------------------------------------------------------------


def _archive_message(archive_on: bool, scope: str) -> str:
    if archive_on:
        return f"Retention now archives events {scope} before deleting them (whole UTC days, docs/archive.md)."
    return f"Retention now deletes events {scope} without archiving them."


def _retention_rows(access: OrgAccess) -> list[dict]:
    return [
        {"app": app, "days": app.effective_retention_days, "override": app.retention_override}
        for app in access.organization.apps.select_related("organization").order_by("name")
    ]


def _org_settings_page(
    request: HttpRequest, access: OrgAccess, *, settings_form=None, retention_form=None, preview=None, status=200
) -> HttpResponse:
    organization = access.organization
    context = {
        "organization": organization,
        "access": access,
        "settings_form": settings_form
        or forms.OrganizationSettingsForm(
            initial={"name": organization.name, "tier": organization.tier}
        ),
        "retention_form": retention_form
        or forms.RetentionForm(
            initial={
                **forms.RetentionForm.initial_for(organization.retention_days),
                "archive": "on" if organization.archive_before_delete else "off",
            }
        ),
        "archive_destination": archive.destination_label(),
        "preview": preview,
        "current_count": retention.preview_organization_default(
            organization, days=organization.retention_days, now=timezone.now()
        ),
        "retention_rows": _retention_rows(access),
    }
    return render(request, "dashboard/org_settings.html", context, status=status)


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
    changed = services.update_organization(
        organization, by=request.user, is_active=organization.is_active, **form.cleaned_data
    )
    if not changed:
        messages.info(request, "Nothing changed.")
    else:
        messages.success(request, "Organization settings saved.")
    return redirect("dashboard:org_settings", org_id=organization.public_id)


def _confirm_page(request: HttpRequest, access: OrgAccess, *, app: App | None = None, status: int = 200, **page) -> HttpResponse:
    """A dangerous action's own page (templates/dashboard/confirm.html): title, consequences,
    action, button, cancel_url, and optionally danger, hidden, form, reassurance."""
    context = {"organization": access.organization, "access": access, "app": app, "hidden": {}, "danger": True, **page}
    return render(request, "dashboard/confirm.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def org_state(request: HttpRequest, org_id: str) -> HttpResponse:
    """Disable or enable the whole organization: GET says what will happen, POST does it."""
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    organization = access.organization
    if request.method == "POST":
        form = forms.AppStateForm(request.POST)
        if form.is_valid():
            active = form.cleaned_data["is_active"]
            if services.set_organization_active(organization, active=active, by=request.user):
                state = "enabled: ingest accepts its apps' events again" if active else (
                    "disabled: ingest for its apps now answers 403"
                )
                messages.success(request, f"{organization.name} is {state}.")
        return redirect("dashboard:org_settings", org_id=organization.public_id)
    apps = organization.apps.count()
    settings_url = reverse("dashboard:org_settings", kwargs={"org_id": organization.public_id})
    if organization.is_active:
        return _confirm_page(
            request, access,
            title=f"Disable {organization.name}?",
            consequences=[
                f"Ingest refuses every one of its {apps} app{pluralize(apps)} at once: their clients get 403 and "
                "none of the events they send meanwhile is stored.",
                "Stored events, credentials, members and settings are kept; the analytics stay readable.",
                "You can enable the organization again from its settings; events sent meanwhile do not come back.",
            ],
            action=reverse("dashboard:org_state", kwargs={"org_id": organization.public_id}),
            hidden={"is_active": ""},
            button="Disable the organization",
            cancel_url=settings_url,
        )  # fmt: skip
    return _confirm_page(
        request, access,
        title=f"Enable {organization.name}?",
        consequences=[f"Ingest accepts events for its {apps} app{pluralize(apps)} again (disabled apps stay disabled)."],
        action=reverse("dashboard:org_state", kwargs={"org_id": organization.public_id}),
        hidden={"is_active": "on"},
        danger=False,
        button="Enable the organization",
        cancel_url=settings_url,
    )  # fmt: skip


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
        if request.POST.get("archive"):
            # Count as the form would have it: an archiving app loses whole days (unsaved).
            organization.archive_before_delete = form.archive_choice
        count = retention.preview_organization_default(organization, days=form.days, now=timezone.now())
        preview = {"days": form.days, "inherit": form.inherit, "count": count}
        return _org_settings_page(request, access, retention_form=form, preview=preview)
    changed = services.set_organization_retention(organization, days=form.days, by=request.user)
    if changed:
        kept = "forever" if form.days is None else f"for {form.days} days"
        messages.success(
            request,
            f"Events are now kept {kept} by default. Older events are deleted the next time retention runs.",
        )
    if request.POST.get("archive"):
        if services.set_organization_archive(organization, archive=form.archive_choice, by=request.user):
            changed = True
            messages.success(request, _archive_message(form.archive_choice, "by default"))
    if not changed:
        messages.info(request, "Retention unchanged.")
    return redirect("dashboard:org_settings", org_id=organization.public_id)


# --- The app list ----------------------------------------------------------------------------


@login_required
def app_list(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id)
    apps = list(access.organization.apps.select_related("organization").order_by("name"))
    received = stats.last_received_at([app.pk for app in apps])
    rows = [{"app": app, "last_received_at": received.get(app.pk)} for app in apps]
    return render(request, "dashboard/app_list.html", {"organization": access.organization, "access": access, "rows": rows})


# --- Credentials -----------------------------------------------------------------------------


def _snippet_context(
    request: HttpRequest, app: App, *, token: str | None, secret: str | None, token_prefix: str | None
) -> dict:
    endpoint = endpoints.public_url(request)
    return {
        "endpoint": endpoint,
        "ingest_url": endpoint + app.ingest_path,
        # The SDK accepts only lowercase letters, digits, "-" and "_" in a service name.
        "service_name": slugify(app.name) or "my-app",
        "env_token": token or (f"<the token shown when it was issued; it starts {token_prefix}>" if token_prefix else "<rotate to issue a token>"),
        "env_secret": secret or "<reveal the secret above and paste it here>",
    }


def _credentials_page(
    request: HttpRequest, app: App, access: OrgAccess, *, revealed: dict | None = None, status: int = 200
) -> HttpResponse:
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
        "last_event": stats.latest_event(app.pk),
        "only_one_active": len(active) == 1,
        "public_url_mismatch": endpoints.public_url_mismatch(request),
        "configured_public_url": endpoints.configured_public_url(),
        **_snippet_context(
            request,
            app,
            token=snippet_token,
            secret=snippet_secret,
            token_prefix=newest.token_prefix if newest else None,
        ),
    }
    return _no_store(render(request, "dashboard/app_credentials.html", context, status=status))


@login_required
def app_credentials(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    checklist.note_credentials_seen(app)  # the first-run checklist's first step
    return _credentials_page(request, app, access)


@login_required
@require_POST
def credential_reveal(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Show one credential's secret, recorded in the audit log. A POST, so it is always deliberate."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.CredentialForm(request.POST, app=app)
    if not form.is_valid():
        messages.error(request, "That credential set is no longer active.")
        return redirect("dashboard:app_credentials", org_id=org_id, app_id=app_id)
    credential: Credential = form.cleaned_data["credential"]
    secret = services.reveal_secret(credential, by=request.user)
    checklist.note_credentials_seen(app)
    return _credentials_page(request, app, access, revealed={"credential": credential.pk, "secret": secret})


@login_required
@require_POST
def credentials_rotate(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, _ = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if forms.ConfirmForm(request.POST).is_valid():
        issued = services.rotate_credentials(app, by=request.user)
        remember_issued(request, issued)
        messages.success(
            request,
            "New credentials issued. The previous set keeps working until you revoke it, "
            "so you can update your clients first.",
        )
    return redirect("dashboard:app_credentials", org_id=org_id, app_id=app_id)


@login_required
@require_http_methods(["GET", "POST"])
def credential_revoke(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Revoke a credential set. Revoking the only active one stops ingest for the app, so that
    needs its own confirmation (GET, or a POST without `confirmed`)."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.CredentialForm(request.POST if request.method == "POST" else request.GET, app=app)
    last = form.is_valid() and app.credentials.active().count() == 1
    if form.is_valid() and (request.method == "GET" or (last and "confirmed" not in request.POST)):
        credential = form.cleaned_data["credential"]
        consequences = [
            f"Clients using the token {credential.token_prefix}… and its secret get 401 at once; their events are refused.",
        ]
        if last:
            consequences.append(
                f"It is {app.name}'s only active set: no client can send events until you rotate to issue a new one "
                "and update every client."
            )
        return _confirm_page(
            request, access, app=app,
            title=f"Revoke credentials {credential.token_prefix}…?",
            consequences=consequences,
            reassurance="Revoking cannot be undone; stored events are kept.",
            action=reverse("dashboard:credential_revoke", kwargs={"org_id": org_id, "app_id": app_id}),
            hidden={"credential": credential.pk, "confirmed": "yes"},
            button="Revoke these credentials",
            cancel_url=reverse("dashboard:app_credentials", kwargs={"org_id": org_id, "app_id": app_id}),
        )  # fmt: skip
    if request.method == "POST" and form.is_valid():
        credential = form.cleaned_data["credential"]
        services.revoke_credential(credential, by=request.user)
        messages.success(request, f"Credentials {credential.token_prefix}… are revoked; clients using them get 401 now.")
    elif request.method == "POST" or "credential" in request.GET:
        messages.error(request, "That credential set is already revoked.")
    return redirect("dashboard:app_credentials", org_id=org_id, app_id=app_id)


# --- App settings ----------------------------------------------------------------------------


def _app_settings_page(
    request: HttpRequest, app: App, access: OrgAccess, *, status: int = 200, preview=None, **bound
) -> HttpResponse:
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "name_form": bound.get("name_form") or forms.AppNameForm(initial={"name": app.name}),
        "retention_form": bound.get("retention_form")
        or forms.RetentionForm(
            allow_inherit=True,
            organization_days=app.organization.retention_days,
            organization_archive=app.organization.archive_before_delete,
            initial={
                **forms.RetentionForm.initial_for(app.retention_days, inherit=not app.retention_override),
                "archive": forms.RetentionForm.archive_initial(app.archive_before_delete),
            },
        ),
        "archive_destination": archive.destination_label(),
        "preview": preview,
        "current_count": retention.events_past_retention(app, now=timezone.now()),
        "effective_days": app.effective_retention_days,
        "event_count": retention.stored_events(app),
    }
    return render(request, "dashboard/app_settings.html", context, status=status)


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
        return redirect("dashboard:app_settings", org_id=org_id, app_id=app_id)
    return _app_settings_page(request, app, access)


@login_required
@require_http_methods(["GET", "POST"])
def app_state(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Disable or enable the app's ingest: GET says what disabling does, POST does it."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if request.method == "GET":
        settings_url = reverse("dashboard:app_settings", kwargs={"org_id": org_id, "app_id": app_id})
        if not app.is_active:
            return redirect(settings_url)
        return _confirm_page(
            request, access, app=app,
            title=f"Disable {app.name}?",
            consequences=[
                "Ingest answers 403 to this app's clients at once; none of the events they send meanwhile is stored.",
                "Its stored events, credentials and settings are kept, and its analytics stay readable.",
                "You can enable it again from its settings.",
            ],
            action=reverse("dashboard:app_state", kwargs={"org_id": org_id, "app_id": app_id}),
            hidden={"is_active": ""},
            button="Disable the app",
            cancel_url=settings_url,
        )  # fmt: skip
    form = forms.AppStateForm(request.POST)
    if form.is_valid():
        active = form.cleaned_data["is_active"]
        if services.set_app_active(app, active=active, by=request.user):
            if active:
                messages.success(request, f"{app.name} is enabled; ingest accepts its events again.")
            else:
                messages.success(request, f"{app.name} is disabled; ingest answers 403 to its clients.")
    return redirect("dashboard:app_settings", org_id=org_id, app_id=app_id)


@login_required
@require_POST
def app_retention(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    """Save the app's retention, or with `preview` only count what it would delete."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = forms.RetentionForm(
        request.POST,
        allow_inherit=True,
        organization_days=app.organization.retention_days,
        organization_archive=app.organization.archive_before_delete,
    )
    if not form.is_valid():
        return _app_settings_page(request, app, access, retention_form=form, status=400)
    if "preview" in request.POST:
        if request.POST.get("archive"):
            app.archive_before_delete = form.archive_choice  # counted as the form would have it, unsaved
        days = app.organization.retention_days if form.inherit else form.days
        count = retention.count_older_than(app, days=days, now=timezone.now())
        preview = {"days": days, "inherit": form.inherit, "count": count}
        return _app_settings_page(request, app, access, retention_form=form, preview=preview)
    changed = services.set_app_retention(app, override=not form.inherit, days=form.days, by=request.user)
    if changed:
        days = app.effective_retention_days
        kept = "forever" if days is None else f"for {days} days"
        source = "the organization's default" if form.inherit else "this app's own setting"
        messages.success(
            request, f"{app.name} now keeps events {kept} ({source}). Older events go the next time retention runs."
        )
    if request.POST.get("archive"):
        if services.set_app_archive(app, archive=form.archive_choice, by=request.user):
            changed = True
            messages.success(request, _archive_message(app.effective_archive, f"for {app.name}"))
    if not changed:
        messages.info(request, "Retention unchanged.")
    return redirect("dashboard:app_settings", org_id=org_id, app_id=app_id)


def _app_delete_page(request: HttpRequest, app: App, access: OrgAccess, form, *, status: int = 200) -> HttpResponse:
    events = retention.stored_events(app)
    keys = {"org_id": app.organization.public_id, "app_id": app.public_id}
    return _confirm_page(
        request, access, app=app, status=status,
        title=f"Delete {app.name}?",
        consequences=[
            f"All {events} of its stored event{pluralize(events)} are deleted, with its rollups, funnels and alert rules.",
            "Its credentials stop working at once: clients get 401 and their events are refused.",
            "This cannot be undone. To stop ingest but keep the data, disable the app instead.",
        ],
        action=reverse("dashboard:app_delete", kwargs=keys),
        form=form,
        button="Delete the app and its events",
        cancel_url=reverse("dashboard:app_settings", kwargs=keys),
    )  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def app_delete(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if request.method == "GET":
        return _app_delete_page(request, app, access, forms.DeleteAppForm(app_name=app.name))
    form = forms.DeleteAppForm(request.POST, app_name=app.name)
    if not form.is_valid():
        return _app_delete_page(request, app, access, form, status=400)
    name = app.name
    # In this order: ingest refused first, so no event arrives while the rest go.
    services.disable_app(app)
    pk, deleted = app.pk, storage.delete_app_events(app.pk)
    services.delete_app(app, by=request.user, events=deleted)
    # Anything a job derived from the events meanwhile. With events on a server of
    # their own nothing cascades there from the app's row (docs/events-database.md).
    storage.delete_app_events(pk)
    messages.success(request, f"{name} and its {deleted} events are deleted.")
    return redirect("dashboard:app_list", org_id=org_id)
