"""API keys: issue, revoke, and find the key a request's bearer token names."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import ApiKey, Scope
from organizations.models import Organization
from organizations.services import record_audit

TOKEN_PREFIX = "clacks_"
PREFIX_LENGTH = 15  # "clacks_" and 8 random characters: shown, never enough to use
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(token: str) -> str:
    """What a key is stored and looked up by: its token's SHA-256 (the token is 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    """A new key as shown once: the plain token is never stored."""

    key: ApiKey
    token: str


def create_key(
    organization: Organization, *, name: str, scopes: list[str], expires_at: datetime | None = None, by=None
) -> IssuedKey:
    """A new key of the organization, recorded in its audit log as `api_key.create`."""
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {Scope.values}")
    ordered = [scope for scope in Scope.values if scope in scopes]
    with transaction.atomic():
        for _ in range(5):
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            try:
                with transaction.atomic():
                    key = ApiKey.objects.create(
                        organization=organization, name=name, token_hash=hash_key(token), prefix=token[:PREFIX_LENGTH],
                        scopes=ordered, expires_at=expires_at, created_by=by if getattr(by, "is_authenticated", False) else None,
                    )  # fmt: skip
                break
            except IntegrityError:  # a hash collision of two random tokens: never, but never a 500
                continue
        else:
            raise RuntimeError("could not issue a unique API key")
        record_audit(
            organization, action="api_key.create", target=key.prefix, actor=by,
            details={"name": name, "scopes": ordered, "expires_at": expires_at.isoformat() if expires_at else None},
        )  # fmt: skip
    return IssuedKey(key=key, token=token)


def revoke_key(key: ApiKey, *, by=None) -> bool:
    """Revoke the key at once; False when it already was."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if not revoked:
            return False
        key.refresh_from_db(fields=["revoked_at"])
        record_audit(key.organization, action="api_key.revoke", target=key.prefix, actor=by, details={"name": key.name})
    return True


def key_for_token(token: str, *, now: datetime | None = None) -> ApiKey | None:
    """The usable key (not revoked, not expired) this bearer token names, with its organization; else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    key = ApiKey.objects.select_related("organization").filter(token_hash=hash_key(token)).first()
    if key is None or not key.is_usable(now=now):
        return None
    return key


def touch(key: ApiKey, *, now: datetime | None = None) -> None:
    """Record that the key was used, at most once per LAST_USED_RESOLUTION (one UPDATE then, none otherwise)."""
    now = now or timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
