"""The dashboard page where an organization's admins issue, list and revoke API keys."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from api import keys
from api.forms import ApiKeyForm
from api.models import ApiKey
from organizations.access import OrgAccess, get_org_access
from organizations.models import Role


def _page(request: HttpRequest, access: OrgAccess, *, form=None, issued=None, status: int = 200) -> HttpResponse:
    context = {
        "organization": access.organization,
        "access": access,
        "form": form or ApiKeyForm(),
        "issued": issued,
        "keys": ApiKey.objects.filter(organization=access.organization).select_related("created_by"),
        "now": timezone.now(),
    }
    response = render(request, "api/keys.html", context, status=status)
    response["Cache-Control"] = "no-store"  # it may hold a new key, shown this once
    return response


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    if request.method == "GET":
        return _page(request, access)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _page(request, access, form=form, status=400)
    issued = keys.create_key(
        access.organization, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
        expires_at=form.expires_at, by=request.user,
    )  # fmt: skip
    return _page(request, access, issued=issued)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, org_id: str, key_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    key = ApiKey.objects.filter(organization=access.organization, pk=key_id).first()
    if key is None:
        raise Http404("No such API key.")
    if keys.revoke_key(key, by=request.user):
        messages.success(request, f"API key “{key.name}” ({key.prefix}…) is revoked; requests with it get 401 now.")
    else:
        messages.info(request, "That key was already revoked.")
    return redirect("api:keys", org_id=access.organization.public_id)
