"""Single sign-on pages: the start and the callback of an OpenID sign-in, and an
organization's email-domain rules (owners). All of them answer 404 while single
sign-on is off; any failure at the provider ends on the sign-in page with a message.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView, get_next_url

from organizations import oidc, sso
from organizations.access import get_org_access
from organizations.forms import ConfirmForm
from organizations.models import Role
from organizations.sso_forms import SsoDomainForm

logger = logging.getLogger(__name__)

# OAuth 2.0 error codes (RFC 6749, 4.1.2.1; OpenID Connect Core 1.0, 3.1.2.6) as sentences.
# Only the code is read: error_description is whatever the link says, so it is never shown.
PROVIDER_ERRORS = {
    "access_denied": "The sign-in was declined at the identity provider, so you are not signed in.",
    "login_required": "Sign in at the identity provider first, then try again.",
    "consent_required": "The identity provider needs your consent for Clacks: try again and allow it.",
    "interaction_required": "The identity provider needs you to act on its page: try again.",
    "temporarily_unavailable": "The identity provider is busy right now. Try again in a moment.",
    "server_error": "The identity provider had an error. Try again in a moment.",
}
_ERROR_CODE = re.compile(r"^[a-z_]{1,40}$")
STALE_ANSWER = "This sign-in was not started in this browser or was already used. Please sign in again."


def _require_enabled() -> None:
    if not oidc.is_enabled():
        raise Http404("Single sign-on is not configured.")


def _to_sign_in(next_url: str | None) -> HttpResponse:
    url = reverse("organizations:login")
    return HttpResponseRedirect(f"{url}?{urlencode({'next': next_url})}" if next_url else url)


def provider_error_message(code: str) -> str:
    """A sentence for an error code in the provider's answer; unknown codes are named, if plain."""
    if code in PROVIDER_ERRORS:
        return PROVIDER_ERRORS[code]
    shown = code if _ERROR_CODE.match(code) else "unknown"
    return f"The identity provider could not sign you in (error {shown}). Try again, or ask your administrator."


@method_decorator(never_cache, name="dispatch")
class OidcLoginView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider's sign-in page (state, nonce and PKCE verifier kept in the session)."""

    get_settings = staticmethod(oidc.mozilla_setting)

    def __init__(self, **kwargs):
        # Skip mozilla-django-oidc's __init__: the provider's endpoint comes from
        # discovery when someone signs in, not when the view is built.
        super(OIDCAuthenticationRequestView, self).__init__(**kwargs)

    def get(self, request):
        _require_enabled()
        try:
            config = oidc.provider_config()
        except oidc.ProviderError as exc:
            messages.error(request, str(exc))
            return _to_sign_in(get_next_url(request, "next"))
        self.OIDC_OP_AUTH_ENDPOINT = config.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        return super().get(request)


@method_decorator(never_cache, name="dispatch")
class OidcCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back: sign in, or back to the sign-in page with why not."""

    get_settings = staticmethod(oidc.mozilla_setting)

    def get(self, request):
        _require_enabled()
        states = request.session.get("oidc_states") or {}
        state = request.GET.get("state", "")
        error = request.GET.get("error", "")
        if error:
            if state in states:  # that state is spent: its answer cannot be replayed
                del states[state]
                request.session.modified = True
            logger.info("OpenID provider answered a sign-in with error %r", error[:40])
            return self._failed(provider_error_message(error))
        if not request.GET.get("code") or state not in states:
            # An old tab, the same answer opened twice, another browser, or a forged link.
            return self._failed(STALE_ANSWER)
        try:
            return super().get(request)
        except oidc.ProviderError as exc:
            return self._failed(str(exc))

    def login_failure(self):
        return self._failed("Single sign-on could not sign you in. Please try again.")

    def _failed(self, message: str) -> HttpResponse:
        messages.error(self.request, message)
        return _to_sign_in(self.request.session.get("oidc_login_next"))


# --- An organization's domain rules (owners) ----------------------------------------------


def _domains_page(request: HttpRequest, access, form: SsoDomainForm, *, status: int = 200) -> HttpResponse:
    organization = access.organization
    return render(
        request,
        "organizations/sso_domains.html",
        {
            "organization": organization,
            "access": access,
            "rules": organization.sso_domains.select_related("created_by"),
            "form": form,
            "button_label": settings.OIDC_BUTTON_LABEL,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def sso_domains(request: HttpRequest, org_id: str) -> HttpResponse:
    _require_enabled()
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    if request.method == "GET":
        return _domains_page(request, access, SsoDomainForm())
    form = SsoDomainForm(request.POST)
    if form.is_valid():
        try:
            rule = sso.add_domain(access.organization, by=request.user, **form.cleaned_data)
        except sso.DomainTaken:
            form.add_error("domain", "This organization already has a rule for this domain.")
        else:
            messages.success(
                request, f"People with a verified @{rule.domain} address now join as {rule.get_role_display().lower()}."
            )
            return redirect("organizations:sso_domains", org_id=access.organization.public_id)
    return _domains_page(request, access, form, status=400)


@login_required
@require_POST
def sso_domain_remove(request: HttpRequest, org_id: str, domain_id: int) -> HttpResponse:
    _require_enabled()
    access = get_org_access(request.user, org_id, min_role=Role.OWNER)
    rule = access.organization.sso_domains.filter(pk=domain_id).first()
    if rule is None:
        raise Http404("No such domain rule.")
    if ConfirmForm(request.POST).is_valid():
        sso.remove_domain(rule, by=request.user)
        messages.success(request, f"@{rule.domain} no longer joins anyone; those who joined stay members.")
    return redirect("organizations:sso_domains", org_id=access.organization.public_id)
