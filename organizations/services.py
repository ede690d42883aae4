"""Writes for organizations, apps and credentials. Views and commands call these."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from organizations.crypto import encrypt_secret, new_api_token, new_hmac_secret
from organizations.models import (
    App,
    AuditEntry,
    Credential,
    Invitation,
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
            # `by` may be an API key (api/), which is not a user: the audit entry names it.
            created_by=by if getattr(by, "is_authenticated", False) else None,
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
    """`actor` is the user who acted, or an API key (api.models.ApiKey, which names itself
    through `audit_label`): the actor column holds users, so a key goes into the details."""
    details = dict(details or {})
    if getattr(actor, "audit_label", None):
        details["api_key"] = actor.audit_label
    return AuditEntry.objects.create(
        organization=organization,
        action=action,
        target=target,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        details=details,
    )


# --- Organizations --------------------------------------------------------------------


class LastOwnerError(Exception):
    """The change would leave an organization without an owner."""


class InvitationUnusable(Exception):
    """The invitation was already accepted or has expired."""


class AlreadyMember(Exception):
    """The user already belongs to the invitation's organization."""


class SetupClosed(Exception):
    """The first-admin setup runs only while the database has no user."""


INVITATION_LIFETIME = timedelta(days=7)
SETUP_LOCK_ID = 0x636C61636B73  # "clacks": the advisory lock serialising first-run setup


def create_first_admin(*, username: str, email: str, password: str, organization_name: str = ""):
    """(superuser, organization or None): the first account of a fresh install.

    Raises SetupClosed when any user exists, so the page cannot be replayed."""
    User = get_user_model()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Two setup forms sent at once must not both create an admin. SQLite
            # needs nothing: its transactions here take the write lock at BEGIN.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SETUP_LOCK_ID])
        if User.objects.exists():
            raise SetupClosed
        user = User.objects.create_superuser(username=username, email=email, password=password)
        organization = create_organization(name=organization_name, owner=user) if organization_name else None
        if organization is not None:
            record_audit(organization, action="organization.create", target=organization.public_id, actor=user)
    return user, organization


def _forget_cached_apps(organization: Organization) -> None:
    for app in organization.apps.select_related("organization"):
        forget_cached_app(app)


def update_organization(organization: Organization, *, name: str, tier: str, is_active: bool, by=None) -> list[str]:
    """Save the organization's name, tier and state; returns the names of the fields that changed.

    Disabling or enabling drops every app's ingest cache so ingest answers accordingly at once."""
    changes = {
        field: (getattr(organization, field), value)
        for field, value in (("name", name), ("tier", tier), ("is_active", is_active))
        if getattr(organization, field) != value
    }
    if not changes:
        return []
    with transaction.atomic():
        for field, (_, value) in changes.items():
            setattr(organization, field, value)
        organization.save(update_fields=list(changes))
        record_audit(
            organization,
            action="organization.update",
            target=organization.public_id,
            actor=by,
            details={field: {"from": old, "to": new} for field, (old, new) in changes.items()},
        )
    if "is_active" in changes or "tier" in changes:
        _forget_cached_apps(organization)
    return list(changes)


def set_organization_active(organization: Organization, *, active: bool, by=None) -> bool:
    """Disable or enable ingest for every app of the organization at once; False when unchanged."""
    return bool(
        update_organization(organization, name=organization.name, tier=organization.tier, is_active=active, by=by)
    )


def set_organization_retention(organization: Organization, *, days: int | None, by=None) -> bool:
    """Set the default retention (None keeps events forever); False when nothing changed."""
    if organization.retention_days == days:
        return False
    with transaction.atomic():
        old = organization.retention_days
        organization.retention_days = days
        organization.save(update_fields=["retention_days"])
        record_audit(
            organization,
            action="retention.organization",
            target=organization.public_id,
            actor=by,
            details={"from": old, "to": days},
        )
    return True


def set_organization_archive(organization: Organization, *, archive: bool, by=None) -> bool:
    """Whether retention archives events before deleting them, by default (docs/archive.md)."""
    if organization.archive_before_delete == archive:
        return False
    with transaction.atomic():
        organization.archive_before_delete = archive
        organization.save(update_fields=["archive_before_delete"])
        record_audit(
            organization, action="archive.organization", target=organization.public_id, actor=by,
            details={"from": not archive, "to": archive},
        )  # fmt: skip
    return True


# --- Members and invitations ----------------------------------------------------------


def invite_member(
    organization: Organization,
    *,
    role: str,
    email: str = "",
    by=None,
    now: datetime | None = None,
    valid_for: timedelta = INVITATION_LIFETIME,
) -> Invitation:
    """A new invitation link; the token is the whole credential, so it is long and random."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = Invitation.objects.create(
            organization=organization,
            token=secrets.token_urlsafe(32),
            email=email,
            role=role,
            created_by=by,
            created_at=now,
            expires_at=now + valid_for,
        )
        record_audit(
            organization,
            action="invitation.create",
            target=email or f"invitation #{invitation.pk}",
            actor=by,
            details={"role": role, "expires_at": invitation.expires_at.isoformat()},
        )
    return invitation


def accept_invitation(invitation: Invitation, *, user, now: datetime | None = None) -> Membership:
    """Make the user a member with the invitation's role; each invitation works once.

    Raises InvitationUnusable (expired or taken, also by a concurrent accept) or AlreadyMember."""
    now = now or timezone.now()
    with transaction.atomic():
        if Membership.objects.filter(organization=invitation.organization, user=user).exists():
            raise AlreadyMember
        # A conditional UPDATE, so two people racing for one link cannot both win.
        taken = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, expires_at__gt=now).update(
            accepted_at=now, accepted_by=user
        )
        if taken != 1:
            raise InvitationUnusable
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    organization=invitation.organization, user=user, role=invitation.role
                )
        except IntegrityError:  # joined through another invitation a moment ago
            raise AlreadyMember from None
        record_audit(
            invitation.organization,
            action="invitation.accept",
            target=user.get_username(),
            actor=user,
            details={"role": invitation.role, "invitation": invitation.pk},
        )
        record_audit(
            invitation.organization,
            action="member.add",
            target=user.get_username(),
            actor=user,
            details={"role": invitation.role},
        )
    return membership


def revoke_invitation(invitation: Invitation, *, by=None) -> None:
    with transaction.atomic():
        record_audit(
            invitation.organization,
            action="invitation.revoke",
            target=invitation.email or f"invitation #{invitation.pk}",
            actor=by,
            details={"role": invitation.role},
        )
        invitation.delete()


def _other_owners(membership: Membership) -> int:
    """Owners of the membership's organization besides this one, with their rows locked
    so two owners demoting each other at once cannot both succeed."""
    owners = Membership.objects.select_for_update().filter(organization_id=membership.organization_id, role=Role.OWNER)
    return sum(1 for owner in owners if owner.pk != membership.pk)


def change_role(membership: Membership, *, role: str, by=None) -> bool:
    """Give a member another role; raises LastOwnerError rather than demote the last owner."""
    if membership.role == role:
        return False
    with transaction.atomic():
        if membership.role == Role.OWNER and _other_owners(membership) == 0:
            raise LastOwnerError("An organization needs at least one owner; make someone else owner first.")
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        record_audit(
            membership.organization,
            action="member.role",
            target=membership.user.get_username(),
            actor=by,
            details={"from": old, "to": role},
        )
    return True


def remove_member(membership: Membership, *, by=None) -> None:
    """Remove a member; raises LastOwnerError rather than remove the last owner."""
    with transaction.atomic():
        if membership.role == Role.OWNER and _other_owners(membership) == 0:
            raise LastOwnerError("An organization needs at least one owner; make someone else owner first.")
        record_audit(
            membership.organization,
            action="member.remove",
            target=membership.user.get_username(),
            actor=by,
            details={"role": membership.role},
        )
        membership.delete()


# --- Apps ---------------------------------------------------------------------------


def rename_app(app: App, *, name: str, by=None) -> bool:
    if app.name == name:
        return False
    with transaction.atomic():
        old = app.name
        app.name = name
        app.save(update_fields=["name"])
        record_audit(app.organization, action="app.rename", target=app.public_id, actor=by, details={"from": old, "to": name})
    return True


def set_app_active(app: App, *, active: bool, by=None) -> bool:
    """Enable or disable ingest for the app; takes effect at once (the ingest cache is dropped)."""
    if app.is_active == active:
        return False
    with transaction.atomic():
        app.is_active = active
        app.save(update_fields=["is_active"])
        record_audit(app.organization, action="app.enable" if active else "app.disable", target=app.public_id, actor=by)
    forget_cached_app(app)
    return True


def set_app_retention(app: App, *, override: bool, days: int | None, by=None) -> bool:
    """Use the organization's retention (override=False) or the app's own `days` (None = forever)."""
    days = days if override else None
    if app.retention_override == override and app.retention_days == days:
        return False
    with transaction.atomic():
        old = {"override": app.retention_override, "days": app.retention_days}
        app.retention_override = override
        app.retention_days = days
        app.save(update_fields=["retention_override", "retention_days"])
        record_audit(
            app.organization,
            action="retention.app",
            target=app.public_id,
            actor=by,
            details={"from": old, "to": {"override": override, "days": days}},
        )
    return True


def set_app_archive(app: App, *, archive: bool | None, by=None) -> bool:
    """The app's own archive choice (None follows the organization's); False when unchanged."""
    if app.archive_before_delete == archive:
        return False
    with transaction.atomic():
        old = app.archive_before_delete
        app.archive_before_delete = archive
        app.save(update_fields=["archive_before_delete"])
        record_audit(
            app.organization, action="archive.app", target=app.public_id, actor=by, details={"from": old, "to": archive}
        )
    return True


def disable_app(app: App) -> None:
    """Refuse the app's ingest at once, before a (possibly long) deletion of its events.

    No audit entry: the deletion that follows records itself."""
    App.objects.filter(pk=app.pk).update(is_active=False)
    app.is_active = False
    forget_cached_app(app)


def delete_app(app: App, *, by=None, events: int = 0) -> None:
    """Delete the app and its credentials, recording how many events the caller deleted first.

    The events go before this, in batches (telemetry.storage.delete_app_events,
    after disable_app), so this transaction stays short."""
    organization, public_id, name = app.organization, app.public_id, app.name
    with transaction.atomic():
        app.delete()
        record_audit(organization, action="app.delete", target=public_id, actor=by, details={"name": name, "events": events})
    forget_cached_app(app)


def reveal_secret(credential: Credential, *, by=None) -> str:
    """The credential's plain HMAC secret, recorded in the audit log as `credentials.reveal`."""
    secret = credential.reveal_secret()
    record_audit(
        credential.app.organization,
        action="credentials.reveal",
        target=credential.app.public_id,
        actor=by,
        details={"token_prefix": credential.token_prefix},
    )
    return secret
