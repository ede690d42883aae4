"""Single sign-on through an OpenID Connect provider, with mozilla-django-oidc.

mozilla-django-oidc runs the authorization code flow (state, nonce, PKCE, the
code exchange, the ID token's signature against the provider's keys). This
module gives it the provider's endpoints from the issuer's discovery document
(fetched at the first sign-in and cached, never when Django starts), checks the
ID token's issuer and audience too, turns every failure into a ProviderError
whose text can be shown to the person signing in, and hands the verified claims
to organizations.sso, which finds or creates the account. README, "Single sign-on".
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings

from organizations import sso

logger = logging.getLogger(__name__)

DISCOVERY_CACHE_SECONDS = 3600
TIMEOUT_SECONDS = 10

# mozilla-django-oidc's settings that Clacks fixes rather than reads from the environment.
FIXED_SETTINGS = {
    "OIDC_RP_SCOPES": "openid email profile",
    "OIDC_USE_NONCE": True,
    "OIDC_USE_PKCE": True,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "organizations:oidc_callback",
    "OIDC_REDIRECT_FIELD_NAME": "next",
    "OIDC_TIMEOUT": TIMEOUT_SECONDS,
    "OIDC_VERIFY_SSL": True,
    "OIDC_ALLOW_UNSECURED_JWT": False,
    "OIDC_TOKEN_USE_BASIC_AUTH": False,
    "OIDC_STORE_ACCESS_TOKEN": False,
    "OIDC_STORE_ID_TOKEN": False,
}

UNREACHABLE = "The identity provider cannot be reached right now. Try again in a moment."
NOT_ACCEPTED = "The identity provider did not complete the sign-in (it may have taken too long). Please try again."
NOT_VERIFIED = "The answer from the identity provider could not be verified, so you are not signed in. Please try again."


class ProviderError(Exception):
    """Signing in through the provider failed; str() is a message for the person signing in."""


def is_enabled() -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID and settings.OIDC_CLIENT_SECRET)


def mozilla_setting(attr: str, *default):
    """mozilla-django-oidc's `get_settings`: Clacks' fixed values, else Django's settings."""
    if attr in FIXED_SETTINGS:
        return FIXED_SETTINGS[attr]
    return import_from_settings(attr, *default)


@dataclass(frozen=True)
class ProviderConfig:
    """The parts of the provider's discovery document Clacks uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def _discovery_cache_key(issuer: str) -> str:
    return "oidc-discovery:" + hashlib.sha256(issuer.encode()).hexdigest()[:32]


def provider_config() -> ProviderConfig:
    """The provider's endpoints from `{OIDC_ISSUER}/.well-known/openid-configuration`
    (OpenID Connect Discovery 1.0, 4), cached for an hour. Raises ProviderError."""
    issuer = settings.OIDC_ISSUER
    key = _discovery_cache_key(issuer)
    cached = cache.get(key)
    if cached:
        return ProviderConfig(**cached)
    # Discovery 1.0, 4: a terminating "/" of the issuer is removed before the path is appended.
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("OpenID provider discovery at %s failed: %s", url, exc.__class__.__name__)
        raise ProviderError(UNREACHABLE) from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        # Discovery 1.0, 4.3: the document must name exactly the issuer it was fetched for.
        logger.warning("OpenID provider discovery at %s names another issuer: %r", url, document.get("issuer") if isinstance(document, dict) else None)
        raise ProviderError("Single sign-on is misconfigured (the provider names another issuer). Tell your administrator.")
    try:
        config = ProviderConfig(
            issuer=issuer,
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            userinfo_endpoint=document.get("userinfo_endpoint", ""),
            jwks_uri=document["jwks_uri"],
        )
    except KeyError as exc:
        logger.warning("OpenID provider discovery at %s lacks %s", url, exc)
        raise ProviderError("Single sign-on is misconfigured (the provider's discovery document is incomplete). Tell your administrator.") from None
    cache.set(key, asdict(config), DISCOVERY_CACHE_SECONDS)
    return config


def _claims(id_claims: dict, userinfo: dict | None) -> sso.Claims:
    """The claims Clacks uses: from the ID token, and for what it lacks from userinfo.
    The address and whether it is verified always come from the same one."""
    source = id_claims if id_claims.get("email") or userinfo is None else userinfo
    username = id_claims.get("preferred_username") or (userinfo or {}).get("preferred_username") or ""
    name = id_claims.get("name") or (userinfo or {}).get("name") or ""
    return sso.Claims(
        subject=str(id_claims["sub"]),
        email=str(source.get("email") or "")[:254],
        # Only a JSON true counts (some providers send the string "false").
        email_verified=source.get("email_verified") is True,
        preferred_username=str(username),
        name=str(name),
    )


class OidcBackend(OIDCAuthenticationBackend):
    """Signs in the person the provider vouches for; only the callback view calls it."""

    get_settings = staticmethod(mozilla_setting)

    def __init__(self, *args, **kwargs):
        # Django builds every backend for each sign-in and each session lookup, and
        # mozilla-django-oidc's own __init__ reads the provider's endpoints: those
        # come from discovery, fetched only when an OpenID sign-in is under way.
        self.UserModel = get_user_model()

    def authenticate(self, request, *, nonce, code_verifier=None):
        """The user, or None when single sign-on is off. Raises ProviderError.

        The keyword-only nonce keeps Django from offering this backend a username and
        password: a password sign-in does not match its signature and skips it."""
        if request is None or not is_enabled():
            return None
        self.config = provider_config()
        self.OIDC_OP_TOKEN_ENDPOINT = self.config.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = self.config.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = self.config.jwks_uri
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        try:
            return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)
        except requests.HTTPError as exc:
            # The token endpoint refused the code (expired, used twice, wrong secret).
            status = exc.response.status_code if exc.response is not None else "?"
            logger.warning("OpenID provider refused the sign-in: HTTP %s", status)
            raise ProviderError(NOT_ACCEPTED) from None
        except (requests.ConnectionError, requests.Timeout):
            logger.warning("OpenID provider unreachable during sign-in")
            raise ProviderError(UNREACHABLE) from None
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            logger.warning("OpenID sign-in not verified: %s: %s", exc.__class__.__name__, exc)
            raise ProviderError(NOT_VERIFIED) from None

    def verify_token(self, token, **kwargs):
        """The ID token's claims, with what mozilla-django-oidc leaves unchecked checked too:
        issuer, audience, expiry and subject (OpenID Connect Core 1.0, 3.1.3.7)."""
        if not token:
            raise SuspiciousOperation("The token response has no ID token.")
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if payload.get("iss") != self.config.issuer:
            raise SuspiciousOperation("ID token from another issuer.")
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client.")
        if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token authorized for another client.")
        if "exp" not in payload or not payload.get("sub"):
            raise SuspiciousOperation("ID token without expiry or subject.")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = None
        if not payload.get("email") and self.OIDC_OP_USER_ENDPOINT:
            userinfo = self.get_userinfo(access_token, id_token, payload)
            # Core 1.0, 5.3.2: userinfo about anyone but the ID token's subject is not used.
            if str(userinfo.get("sub")) != str(payload["sub"]):
                userinfo = None
        try:
            result = sso.sign_in(issuer=self.config.issuer, claims=_claims(payload, userinfo))
        except sso.AccountDisabled:
            raise ProviderError("Your Clacks account is deactivated. Ask an administrator.") from None
        for membership in result.joined:
            messages.info(
                self.request,
                f"You joined {membership.organization.name} as {membership.get_role_display().lower()} "
                "(your email domain).",
            )
        return result.user
