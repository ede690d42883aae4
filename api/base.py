"""What every REST API view shares: the bearer key, its scopes, its rate, the error
shape, and the lookups that keep a key inside its organization."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from api import keys, limits
from api.errors import ApiError, exception_handler, not_found
from api.models import ApiKey, Scope
from organizations.models import App, AuditEntry, Organization
from organizations.services import record_audit


MAX_ID_LENGTH = 64  # public ids are org_… and app_… of at most this many characters
MAX_PK = 2**63 - 1  # primary keys are bigints: a larger number is no row (and no database error)


def possible_id(text: str) -> bool:
    """Whether an issued public id could be this text: printable ASCII of a sane length.
    Anything else is no app, found without a query (PostgreSQL text cannot hold a NUL)."""
    return 0 < len(text) <= MAX_ID_LENGTH and text.isascii() and text.isprintable()


def possible_pk(number: int) -> bool:
    return 0 < number <= MAX_PK


class BearerKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>`. Raises (never returns None): there is no other scheme."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise ApiError(401, "missing_api_key", "Send an API key as `Authorization: Bearer <key>`.")
        key = keys.key_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            # Unknown, revoked and expired keys get one answer: it says nothing about which.
            raise ApiError(401, "invalid_api_key", "The API key is not valid: unknown, revoked or expired.")
        return (None, key)

    def authenticate_header(self, request):
        return 'Bearer realm="clacks"'  # keeps 401 a 401 (DRF turns it into 403 without)


class JsonOnly(BaseContentNegotiation):
    """Answers are JSON (or an export's own type) whatever `Accept` says, errors included."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ApiView(APIView):
    """A REST API endpoint. `scopes` maps each HTTP method to the scope it needs."""

    authentication_classes = [BearerKeyAuthentication]
    content_negotiation_class = JsonOnly
    permission_classes = []
    scopes: dict[str, str] = {"GET": Scope.READ}

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        key: ApiKey = request.auth
        if key is None:  # an OPTIONS or HEAD that DRF let through without authenticating
            raise ApiError(401, "missing_api_key", "Send an API key as `Authorization: Bearer <key>`.")
        # Every authenticated request counts, whatever its scope or outcome.
        self.rate = limits.enforce(key.pk)
        needed = self.scopes.get(request.method) or self.scopes.get("GET" if request.method == "HEAD" else "")
        if needed is None:
            return  # a method this view does not have: DRF answers 405 next
        if not key.has_scope(needed):
            raise ApiError(403, "insufficient_scope", f"This API key lacks the `{needed}` scope.")
        now = timezone.now()
        keys.touch(key, now=now)
        if needed == Scope.ADMIN:
            self.admin_call_started = now

    def _audit_admin_call(self, request, response) -> None:
        """Every admin-scope call is in the audit log: a change through organizations.services
        records itself (naming the key); a call that changed nothing, or was refused after its
        scope was checked, gets an `api.admin_call` entry here."""
        key: ApiKey = request.auth
        recorded = AuditEntry.objects.filter(
            organization=key.organization, created_at__gte=self.admin_call_started, details__api_key=key.audit_label
        ).exists()
        if not recorded:
            record_audit(
                key.organization, action="api.admin_call", target=request.path[:200], actor=key,
                details={"method": request.method, "status": response.status_code},
            )  # fmt: skip

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if getattr(self, "admin_call_started", None) is not None:
            self._audit_admin_call(request, response)
        rate = getattr(self, "rate", None)
        if rate is not None:
            for name, value in rate.headers().items():
                response.setdefault(name, value)
        response.setdefault("Cache-Control", "no-store")
        return response

    # --- Lookups: a key sees its own organization and nothing else (404, as for a stranger).

    def organization(self, org_id: str) -> Organization:
        organization = self.request.auth.organization
        if organization.public_id != org_id:
            raise not_found("No such organization.")
        return organization

    def app(self, org_id: str, app_id: str) -> App:
        organization = self.organization(org_id)
        if not possible_id(app_id):
            raise not_found("No such application.")
        app = App.objects.select_related("organization").filter(organization=organization, public_id=app_id).first()
        if app is None:
            raise not_found("No such application.")
        return app
