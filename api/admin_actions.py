"""REST API v1, write side (the `admin` scope): apps, credentials and retention.

Each action checks its input with the dashboard's own form, then calls the
organizations.services function the dashboard's page calls, which records the
change in the audit log; the key is named there (organizations.services.record_audit).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from api import schema as s
from api.base import ApiView, possible_pk
from api.errors import ApiError, not_found
from api.resources import app_json
from organizations import forms, services
from organizations.models import App, Credential, Organization
from telemetry import retention


def _invalid(form) -> ApiError:
    lines = [f"{name}: {m}" if name != "__all__" else m for name, ms in form.errors.items() for m in ms]
    return ApiError(400, "invalid_request", lines[0], details="; ".join(lines))


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    return request.data


def _name(request, *, required: bool) -> str | None:
    data = _body(request)
    if "name" not in data and not required:
        return None
    if not isinstance(data.get("name"), str):
        raise ApiError(400, "invalid_request", "name: a string.")
    form = forms.AppNameForm({"name": data["name"]})
    if not form.is_valid():
        raise _invalid(form)
    return form.cleaned_data["name"]


def credential_json(credential: Credential) -> dict:
    return {
        "id": credential.pk,
        "token_prefix": credential.token_prefix,
        "active": credential.is_active,
        "created_at": credential.created_at.isoformat().replace("+00:00", "Z"),
        "revoked_at": credential.revoked_at.isoformat().replace("+00:00", "Z") if credential.revoked_at else None,
    }


def issued_json(issued: services.IssuedCredential) -> dict:
    """A new credential set as it is shown once: the secret and token are not kept in the clear."""
    return {**credential_json(issued.credential), "secret": issued.secret, "token": issued.token}


def create_app(view: ApiView, request, organization: Organization) -> Response:
    name = _name(request, required=True)
    app, issued = services.create_app(organization=organization, name=name, by=request.auth)
    app = App.objects.select_related("organization").get(pk=app.pk)
    return Response({"app": app_json(app), "credentials": issued_json(issued)}, status=status.HTTP_201_CREATED)


def update_app(view: ApiView, request, app: App) -> Response:
    data = _body(request)
    name = _name(request, required=False)
    active = data.get("is_active")
    if "is_active" in data and not isinstance(active, bool):
        raise ApiError(400, "invalid_request", "is_active: true or false.")
    if name is not None:
        services.rename_app(app, name=name, by=request.auth)
    if active is not None:
        services.set_app_active(app, active=active, by=request.auth)
    return Response(app_json(app))


class Credentials(ApiView):
    scopes = {"GET": "admin"}

    @extend_schema(operation_id="app_credentials", summary="The app's credential sets, active and recently revoked (admin scope)",
                   responses=s.ok(s.obj(credentials=s.array(s.CREDENTIAL))))  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        active = list(app.credentials.active().order_by("-created_at", "-pk"))
        revoked = list(app.credentials.filter(revoked_at__isnull=False).order_by("-revoked_at")[:5])
        return Response({"credentials": [credential_json(c) for c in active + revoked]})


class RotateCredentials(ApiView):
    scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="app_credentials_rotate", request=None, responses=s.created(s.ISSUED_CREDENTIAL),
        summary="Issue a new secret and token, shown once; the previous set keeps working until revoked (admin scope)",
    )  # fmt: skip
    def post(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        issued = services.rotate_credentials(app, by=request.auth)
        return Response(issued_json(issued), status=status.HTTP_201_CREATED)


class RevokeCredential(ApiView):
    scopes = {"POST": "admin"}

    @extend_schema(operation_id="app_credential_revoke", request=None, responses=s.ok(s.CREDENTIAL),
                   summary="Revoke one credential set: its clients get 401 at once (admin scope)")  # fmt: skip
    def post(self, request, org_id: str, app_id: str, credential_id: int):
        app = self.app(org_id, app_id)
        if not possible_pk(credential_id):
            raise not_found("No such credential set in this application.")
        credential = Credential.objects.select_related("app__organization").filter(app=app, pk=credential_id).first()
        if credential is None:
            raise not_found("No such credential set in this application.")
        services.revoke_credential(credential, by=request.auth)
        return Response(credential_json(credential))


def retention_json(app: App) -> dict:
    return {
        "inherit": not app.retention_override,
        "days": app.retention_days if app.retention_override else None,
        "effective_days": app.effective_retention_days,
        "organization_days": app.organization.retention_days,
        "events_past_retention": retention.events_past_retention(app),
        "last_ran_at": app.retention_last_run_at.isoformat().replace("+00:00", "Z") if app.retention_last_run_at else None,
    }


class RetentionPolicy(ApiView):
    scopes = {"GET": "read", "PUT": "admin"}

    @extend_schema(operation_id="app_retention_policy", summary="How long the app keeps events",
                   responses=s.ok(s.RETENTION_POLICY))  # fmt: skip
    def get(self, request, org_id: str, app_id: str):
        return Response(retention_json(self.app(org_id, app_id)))

    @extend_schema(
        operation_id="app_retention_policy_set", request={"application/json": s.RETENTION_POLICY_SET}, responses=s.ok(s.RETENTION_POLICY),
        summary="Keep the organization's default (inherit), a number of days, or forever (days null) (admin scope)",
    )  # fmt: skip
    def put(self, request, org_id: str, app_id: str):
        app = self.app(org_id, app_id)
        data = _body(request)
        inherit, days = data.get("inherit", False), data.get("days")
        if not isinstance(inherit, bool):
            raise ApiError(400, "invalid_request", "inherit: true or false.")
        if not inherit and "days" not in data:
            raise ApiError(400, "invalid_request", "days: a number of days, or null to keep events forever.")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                                 or not 1 <= days <= forms.MAX_RETENTION_DAYS):  # fmt: skip
            raise ApiError(400, "invalid_request", f"days: a whole number from 1 to {forms.MAX_RETENTION_DAYS}, or null.")
        services.set_app_retention(app, override=not inherit, days=None if inherit else days, by=request.auth)
        return Response(retention_json(app))
