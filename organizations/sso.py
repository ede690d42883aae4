"""Accounts from single sign-on, and joining organizations by email domain.

Nothing here speaks HTTP: organizations.oidc verifies what the provider says
and calls `sign_in` with the claims. README, "Single sign-on", describes the rules.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from organizations.models import Membership, Role, SsoDomain, SsoDomainJoin, SsoIdentity
from organizations.services import record_audit

logger = logging.getLogger(__name__)

# A domain rule may make people viewers or admins; owners are appointed by an owner.
DOMAIN_ROLES = (Role.VIEWER, Role.ADMIN)

_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")
USERNAME_MAX = 150  # django.contrib.auth's username column


class AccountDisabled(Exception):
    """The account this identity signs in to is deactivated."""


class DomainTaken(Exception):
    """The organization already has a rule for this domain."""


@dataclass(frozen=True)
class Claims:
    """What Clacks uses of a verified sign-in: the subject and a few standard claims."""

    subject: str
    email: str = ""
    email_verified: bool = False
    preferred_username: str = ""
    name: str = ""


@dataclass(frozen=True)
class SignIn:
    user: object
    created: bool
    joined: list[Membership]


def normalize_domain(value: str) -> str | None:
    """The domain in lower case without a leading "@", or None when it is not a domain name."""
    domain = value.strip().lower().lstrip("@").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return domain if _DOMAIN.match(domain) else None


def email_domain(email: str) -> str | None:
    local, at, domain = (email or "").rpartition("@")
    return normalize_domain(domain) if at and local else None


def _free_username(claims: Claims) -> str:
    """preferred_username, else the email address, made safe and unique (a taken name gets -2, -3 …)."""
    User = get_user_model()
    base = _USERNAME_UNSAFE.sub("", claims.preferred_username or claims.email)[: USERNAME_MAX - 8]
    base = base or f"sso-{secrets.token_hex(4)}"
    candidate, n = base, 1
    # Case-insensitively: "Ada" and "ada" would be two people who look like one.
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}" if n < 100 else f"{base}-{secrets.token_hex(3)}"
    return candidate


def _create_account(issuer: str, claims: Claims, now: datetime) -> SsoIdentity:
    User = get_user_model()
    first, _, last = claims.name.strip().partition(" ")
    user = User(username=_free_username(claims), email=claims.email, first_name=first[:150], last_name=last[:150])
    # Signing in goes through the provider only; no password can match.
    user.set_unusable_password()
    user.save()
    return SsoIdentity.objects.create(user=user, issuer=issuer, subject=claims.subject, created_at=now, last_sign_in_at=now)


def sign_in(*, issuer: str, claims: Claims, now: datetime | None = None) -> SignIn:
    """The account of this subject, created at its first sign-in, after joining the
    organizations whose domain rules match a verified address. Raises AccountDisabled."""
    now = now or timezone.now()
    identity = SsoIdentity.objects.select_related("user").filter(issuer=issuer, subject=claims.subject).first()
    created = identity is None
    if created:
        try:
            with transaction.atomic():
                identity = _create_account(issuer, claims, now)
        except IntegrityError:
            # The same person's first sign-in in another tab won the race.
            identity = SsoIdentity.objects.select_related("user").get(issuer=issuer, subject=claims.subject)
            created = False
    user = identity.user
    if not user.is_active:
        raise AccountDisabled
    if not created:
        identity.last_sign_in_at = now
        identity.save(update_fields=["last_sign_in_at"])
        if claims.email and claims.email != user.email:
            user.email = claims.email
            user.save(update_fields=["email"])
    joined = join_by_email_domain(user, email=claims.email, email_verified=claims.email_verified, now=now)
    return SignIn(user=user, created=created, joined=joined)


def join_by_email_domain(user, *, email: str, email_verified: bool, now: datetime | None = None) -> list[Membership]:
    """Memberships added by the domain rules matching a verified address. Each
    organization's rule applies to a user once; an existing membership is left as it is."""
    domain = email_domain(email)
    if not email_verified or domain is None:
        return []
    now = now or timezone.now()
    joined = []
    for rule in SsoDomain.objects.select_related("organization").filter(domain=domain).order_by("pk"):
        with transaction.atomic():
            _, first_time = SsoDomainJoin.objects.get_or_create(
                organization=rule.organization, user=user, defaults={"created_at": now}
            )
            if not first_time or Membership.objects.filter(organization=rule.organization, user=user).exists():
                continue
            membership = Membership.objects.create(organization=rule.organization, user=user, role=rule.role, created_at=now)
            record_audit(
                rule.organization,
                action="member.add",
                target=user.get_username(),
                actor=user,
                details={"role": rule.role, "via": "single sign-on", "domain": domain},
            )
            joined.append(membership)
    return joined


def add_domain(organization, *, domain: str, role: str, by=None) -> SsoDomain:
    """A new rule (domain already normalized); raises DomainTaken if the organization has one for it."""
    if role not in DOMAIN_ROLES:
        raise ValueError(f"role {role!r} cannot be given by a domain rule")
    try:
        with transaction.atomic():
            rule = SsoDomain.objects.create(organization=organization, domain=domain, role=role, created_by=by)
            record_audit(organization, action="sso_domain.add", target=domain, actor=by, details={"role": role})
    except IntegrityError:
        raise DomainTaken from None
    return rule


def remove_domain(rule: SsoDomain, *, by=None) -> None:
    """Delete a rule; those who joined through it stay members."""
    with transaction.atomic():
        record_audit(rule.organization, action="sso_domain.remove", target=rule.domain, actor=by, details={"role": rule.role})
        rule.delete()
