"""Pages that take an app's events out (export) or erase one user's events.

Both need an admin or owner: an export copies raw events, user ids included,
out of Clacks, and an erasure cannot be undone (README, "Data").
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dashboard.lifecycle_forms import EraseConfirmForm, EraseLookupForm, ExportForm
from organizations.access import get_app_access, get_org_access
from organizations.models import Role
from telemetry import lifecycle


@login_required
@require_http_methods(["GET", "POST"])
def export_events(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        time_range = form.cleaned_data["time_range"]
        export_format = lifecycle.EXPORT_FORMATS[form.cleaned_data["format"]]
        lifecycle.record_export(app, time_range, export_format=export_format, by=request.user, via="dashboard")
        # A generator over pages of rows: the response never holds the whole export.
        response = StreamingHttpResponse(
            lifecycle.export_events(app, time_range, export_format=export_format),
            content_type=export_format.content_type,
        )
        filename = lifecycle.export_filename(app, time_range, export_format)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"  # personal data: keep it out of shared caches
        return response
    return render(
        request,
        "lifecycle/export.html",
        {"app": app, "organization": access.organization, "access": access, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def erase_user(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    organization = access.organization
    context = {
        "organization": organization,
        "access": access,
        "lookup_form": EraseLookupForm(),
        "confirm_form": None,
        "preview": None,
    }

    if request.method == "POST" and request.POST.get("step") == "erase":
        confirm_form = EraseConfirmForm(request.POST)
        if confirm_form.is_valid():
            result = lifecycle.erase_user(
                organization, user_id=confirm_form.cleaned_data["user_id"], by=request.user, via="dashboard"
            )
            messages.success(
                request,
                f"Erased {result.total} event{'s' if result.total != 1 else ''} of that user "
                f"across {len(result.per_app)} app{'s' if len(result.per_app) != 1 else ''}. "
                "The audit log records the erasure without the user id.",
            )
            return redirect("dashboard:erase_user", org_id=organization.public_id)
        # Show the counts again next to the error, so the page still says what would go.
        user_id = confirm_form.data.get("user_id", "")
        context.update(confirm_form=confirm_form, lookup_form=EraseLookupForm(initial={"user_id": user_id}))
        context["preview"] = _preview(organization, user_id)
    elif request.method == "POST":
        lookup_form = EraseLookupForm(request.POST)
        context["lookup_form"] = lookup_form
        if lookup_form.is_valid():
            user_id = lookup_form.cleaned_data["user_id"]
            context["preview"] = _preview(organization, user_id)
            context["confirm_form"] = EraseConfirmForm(initial={"user_id": user_id})
    return render(request, "lifecycle/erase.html", context)


def _preview(organization, user_id: str) -> dict | None:
    """Counts per app for the confirmation step, or None for an id that cannot be valid."""
    try:
        result = lifecycle.count_user_events(organization, user_id=user_id)
    except lifecycle.LifecycleError:
        return None
    names = dict(organization.apps.values_list("public_id", "name"))
    return {
        "user_id": user_id,
        "total": result.total,
        "apps": [{"public_id": key, "name": names.get(key, ""), "events": n} for key, n in result.per_app.items()],
    }
