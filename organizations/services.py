"""Writes for organizations, apps and credentials. Views and commands call these."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from organizations.crypto import encrypt_secret, new_api_token, new_hmac_secret
from organizations.models import (
    App,
    AuditEntry,
    Credential,
    Membership,
    Organization,
    Role,
    Tier,
    hash_token,
    new_app_public_id,
)

logger = logging.getLogger(__name__)


class CredentialLimitReached(Exception):
    """An app already holds the maximum number of active credential sets."""


@dataclass(frozen=True)
class IssuedCredential:
    """A credential set as shown once: the plain token is never stored."""

    credential: Credential
    secret: str
    token: str


def app_cache_key(org_public_id: str, app_public_id: str) -> str:
    return f"ingest-app:{org_public_id}:{app_public_id}"


def forget_cached_app(app: App) -> None:
    """Drop the ingest lookup cache so a change (revocation, disabling) applies at once."""
    cache.delete(app_cache_key(app.organization.public_id, app.public_id))


def _org_public_id_for(name: str) -> str:
    base = slugify(name)[:40] or secrets.token_hex(4)
    candidate = f"org_{base}"
    while Organization.objects.filter(public_id=candidate).exists():
        candidate = f"org_{base}-{secrets.token_hex(3)}"
    return candidate


def create_organization(*, name: str, owner=None, tier: str = Tier.SELF_HOSTED) -> Organization:
    """A new organization; `owner`, when given, becomes its first owner."""
    with transaction.atomic():
        org = Organization.objects.create(public_id=_org_public_id_for(name), name=name, tier=tier)
        if owner is not None:
            Membership.objects.create(organization=org, user=owner, role=Role.OWNER)
    return org


def issue_credential(app: App, *, by=None) -> IssuedCredential:
    """A new active credential set for the app. Raises CredentialLimitReached past two."""
    with transaction.atomic():
        # Lock the app row so two concurrent rotations cannot both pass the limit.
        App.objects.select_for_update().filter(pk=app.pk).first()
        if app.credentials.active().count() >= Credential.MAX_ACTIVE_PER_APP:
            raise CredentialLimitReached(
                f"An app can hold {Credential.MAX_ACTIVE_PER_APP} active credential sets; revoke one first."
            )
        secret, token = new_hmac_secret(), new_api_token()
        credential = Credential.objects.create(
            app=app,
            secret_encrypted=encrypt_secret(secret),
            token_hash=hash_token(token),
            token_prefix=token[:12],
            created_by=by,
        )
    forget_cached_app(app)
    return IssuedCredential(credential=credential, secret=secret, token=token)


def create_app(*, organization: Organization, name: str, by=None) -> tuple[App, IssuedCredential]:
    """A new app with its first credential set."""
    with transaction.atomic():
        for _ in range(5):
            try:
                with transaction.atomic():
                    app = App.objects.create(organization=organization, name=name, public_id=new_app_public_id())
                break
            except IntegrityError:  # a public id collision: 1 in 2**64, but never a 500
                continue
        else:
            raise RuntimeError("could not allocate a unique app id")
        issued = issue_credential(app, by=by)
        record_audit(organization, action="app.create", target=app.public_id, actor=by, details={"name": name})
    return app, issued


def rotate_credentials(app: App, *, by=None) -> IssuedCredential:
    """Issue a new credential set, keeping the newest existing one valid until revoked.

    With two sets already active the older one is revoked first, so a rotation
    always leaves the previous set working for the overlap."""
    with transaction.atomic():
        active = list(app.credentials.active().order_by("-created_at", "-pk"))
        for old in active[Credential.MAX_ACTIVE_PER_APP - 1 :]:
            old.revoked_at = timezone.now()
            old.save(update_fields=["revoked_at"])
        issued = issue_credential(app, by=by)
        record_audit(
            app.organization,
            action="credentials.rotate",
            target=app.public_id,
            actor=by,
            details={"token_prefix": issued.credential.token_prefix},
        )
    return issued


def revoke_credential(credential: Credential, *, by=None) -> None:
    if credential.revoked_at is not None:
        return
    credential.revoked_at = timezone.now()
    credential.save(update_fields=["revoked_at"])
    record_audit(
        credential.app.organization,
        action="credentials.revoke",
        target=credential.app.public_id,
        actor=by,
        details={"token_prefix": credential.token_prefix},
    )
    forget_cached_app(credential.app)


def record_audit(organization: Organization, *, action: str, target: str = "", actor=None, details=None) -> AuditEntry:
    return AuditEntry.objects.create(
        organization=organization,
        action=action,
        target=target,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        details=details or {},
    )
