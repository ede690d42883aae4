"""Who is calling the ingest API: signature, freshness, replay and bearer checks.

docs/protocol.md, Signature: X-Signature = hex(HMAC-SHA256(secret as UTF-8 bytes,
"{X-Timestamp}:{X-Nonce}:{raw body}")), or without the nonce part when the
client sends no X-Nonce (the self-hosting guide's form).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig

from organizations.crypto import SecretsUnreadable, decrypt_secret
from organizations.models import App, Credential, Organization, hash_token
from organizations.services import app_cache_key
from telemetry.databases import events_connection
from telemetry.errors import IngestError, secrets_unreadable, too_large

logger = logging.getLogger(__name__)

# One answer for an unknown app and a bad signature, so the endpoint does not
# reveal which apps exist (docs/protocol.md, Signature).
INVALID_SIGNATURE = (401, "invalid_signature", "Invalid signature or unknown application.")

# The public ids the server issues (org_<slug>, app_<hex>) are printable ASCII
# and fit their columns. A path segment that is not (a NUL, a control or
# non-ASCII character, too long) names no app, and goes to neither the cache nor
# the database: PostgreSQL text cannot even hold a NUL.
_PUBLIC_ID = re.compile(
    "[!-~]{1,%d}"
    % max(model._meta.get_field("public_id").max_length for model in (App, Organization))
)


@dataclass(frozen=True)
class IngestApp:
    """What ingest needs to know about an app; small enough to cache."""

    pk: int
    public_id: str
    org_pk: int
    org_public_id: str
    tier: str
    is_active: bool
    org_is_active: bool
    secrets_encrypted: tuple[str, ...]
    token_hashes: tuple[str, ...]

    def secrets(self) -> tuple[list[str], str | None]:
        """(the secrets the configured keys decrypt, why some could not be, if so)."""
        readable, problem = [], None
        for value in self.secrets_encrypted:
            try:
                readable.append(decrypt_secret(value))
            except SecretsUnreadable as exc:
                problem = str(exc)
        return readable, problem


def _snapshot(app: App) -> IngestApp:
    credentials = list(app.credentials.active().values_list("secret_encrypted", "token_hash"))
    return IngestApp(
        pk=app.pk,
        public_id=app.public_id,
        org_pk=app.organization_id,
        org_public_id=app.organization.public_id,
        tier=app.organization.tier,
        is_active=app.is_active,
        org_is_active=app.organization.is_active,
        secrets_encrypted=tuple(secret for secret, _ in credentials),
        token_hashes=tuple(token for _, token in credentials),
    )


def load_ingest_app(org_public_id: str, app_public_id: str) -> IngestApp | None:
    """The app named by an ingest URL, from a short-lived cache; None if unknown.

    Two queries on a miss, none on a hit. Credential changes made through
    organizations.services drop the cache entry at once."""
    if not (_PUBLIC_ID.fullmatch(org_public_id) and _PUBLIC_ID.fullmatch(app_public_id)):
        return None
    key = app_cache_key(org_public_id, app_public_id)
    snapshot = cache.get(key)
    if snapshot is None:
        app = App.objects.for_ingest(org_public_id, app_public_id)
        snapshot = _snapshot(app) if app else False  # remember unknown apps too
        cache.set(key, snapshot, settings.CLACKS_APP_CACHE_SECONDS)
    return snapshot or None


def load_ingest_app_by_token(token: str) -> IngestApp | None:
    """The app whose active credential has this API token (POST /v1/events/batch), or None."""
    credential = (
        Credential.objects.active().select_related("app__organization").filter(token_hash=hash_token(token)).first()
    )
    if credential is None:
        return None
    return load_ingest_app(credential.app.organization.public_id, credential.app.public_id)


def sign(secret: str, timestamp: str, body: bytes, nonce: str | None = None) -> str:
    """The signature a client sends for this body (docs/protocol.md, Signature)."""
    prefix = f"{timestamp}:{nonce}:" if nonce is not None else f"{timestamp}:"
    return hmac.new(secret.encode(), prefix.encode() + body, hashlib.sha256).hexdigest()


def signature_matches(secrets: list[str], *, signature: str, timestamp: str, nonce: str | None, body: bytes) -> bool:
    """True if any active secret signs this request. Constant time per comparison,
    and every secret is always tried, so timing tells nothing about which matched."""
    matched = False
    for secret in secrets:
        expected = sign(secret, timestamp, body, nonce)
        matched |= hmac.compare_digest(expected, signature.lower())
    return matched


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def read_body(request) -> tuple[bytes, bytes]:
    """(bytes as sent, bytes to parse): gzip bodies are inflated, with the size
    limit applied to the inflated bytes too so a small bomb cannot expand."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_large() from None
    limit = settings.CLACKS_MAX_BODY_BYTES
    if len(raw) > limit:
        raise too_large()
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw, raw
    if encoding not in ("gzip", "x-gzip"):
        raise IngestError(415, "unsupported_encoding", "Content-Encoding must be gzip or absent.")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise IngestError(400, "invalid_encoding", "The body is not valid gzip.") from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise too_large()
    return raw, inflated


def parse_timestamp_header(value: str | None) -> int:
    if not value:
        raise IngestError(401, "missing_signature", "X-Timestamp is required.")
    value = value.strip()
    # Guard int() against absurd inputs; unix seconds fit in a few digits.
    if len(value) > 20 or not value.lstrip("-").isdigit():
        raise IngestError(401, "invalid_timestamp", "X-Timestamp must be unix seconds as an integer.")
    return int(value)


# --- Replay protection --------------------------------------------------------------


def remember_nonce(app_pk: int, nonce: str, *, request_time: int, now: float | None = None) -> bool:
    """Record a nonce; False if this app already used it inside the replay window.

    The record is shared by every worker and instance: Redis when REDIS_URL is
    set, otherwise the database (docs/protocol.md, Replay protection)."""
    now = time.time() if now is None else now
    if len(nonce) > 64:
        nonce = hashlib.sha256(nonce.encode()).hexdigest()
    # A request stamped T is accepted until T + tolerance, so remember it that long.
    expires = max(request_time, int(now)) + settings.CLACKS_TIMESTAMP_TOLERANCE + 1
    if settings.CLACKS_SHARED_STORE == "redis":
        from django_redis import get_redis_connection

        redis = get_redis_connection("default")
        return bool(redis.set(f"clacks:nonce:{app_pk}:{nonce}", 1, nx=True, exat=expires))
    return _remember_nonce_in_database(app_pk, nonce, expires_at=expires, now=now)


def _remember_nonce_in_database(app_pk: int, nonce: str, *, expires_at: int, now: float) -> bool:
    from telemetry.models import UsedNonce

    table = UsedNonce._meta.db_table
    expires = datetime.fromtimestamp(expires_at, tz=dt_timezone.utc)
    current = datetime.fromtimestamp(now, tz=dt_timezone.utc)
    adapt = events_connection.ops.adapt_datetimefield_value
    with events_connection.cursor() as cursor:
        # One statement: a new nonce inserts, a live one conflicts, and an
        # expired record of the same nonce is taken over rather than refused.
        cursor.execute(
            f"INSERT INTO {table} (app_id, nonce, expires_at) VALUES (%s, %s, %s) "
            f"ON CONFLICT (app_id, nonce) DO UPDATE SET expires_at = excluded.expires_at "
            f"WHERE {table}.expires_at <= %s",
            [app_pk, nonce, adapt(expires), adapt(current)],
        )
        return cursor.rowcount == 1


def prune_nonces(*, now: datetime | None = None) -> int:
    """Delete expired nonce records (database store only); returns how many."""
    from telemetry.models import UsedNonce

    now = now or datetime.now(tz=dt_timezone.utc)
    deleted, _ = UsedNonce.objects.filter(expires_at__lte=now - timedelta(seconds=1)).delete()
    return deleted


# --- Authenticating a request ---------------------------------------------------------


def app_from_path(org_id: str, app_id: str) -> Callable[[], IngestApp | None]:
    """POST /v1/ingest/{org_id}/{app_id}: the URL names the app."""
    return lambda: load_ingest_app(org_id, app_id)


def app_from_token(request) -> Callable[[], IngestApp | None]:
    """POST /v1/events/batch: the bearer token names the app (the signature is still required)."""

    def find() -> IngestApp | None:
        token = bearer_token(request)
        if token is None:
            raise IngestError(401, "missing_token", "Authorization: Bearer <api token> is required.")
        return load_ingest_app_by_token(token)

    return find


def authenticate(request, *, raw: bytes, body: bytes, find_app: Callable[[], IngestApp | None]) -> IngestApp:
    """The app that signed this request, or IngestError: 401 (no or bad signature,
    unknown app, bad token), 403 (disabled, clock skew), 409 (nonce reused), 503.

    An unknown app and a bad signature get the same answer (docs/protocol.md,
    Signature). The nonce is remembered last, so only requests that pass every
    other check spend one."""
    headers = request.headers
    signature = headers.get("X-Signature", "").strip()
    if not signature:
        raise IngestError(401, "missing_signature", "X-Signature is required.")
    timestamp_text = headers.get("X-Timestamp", "")
    timestamp = parse_timestamp_header(timestamp_text)
    # The SDK sends a nonce; the self-hosting guide's clients may not.
    nonce = headers.get("X-Nonce")
    nonce = nonce.strip() if nonce is not None else None

    app = find_app()
    if app is None or not signed_by(app, signature, timestamp_text.strip(), nonce, raw, body):
        raise IngestError(*INVALID_SIGNATURE)

    token = bearer_token(request)
    if token is not None and hash_token(token) not in app.token_hashes:
        raise IngestError(401, "invalid_token", "The bearer token is not an active token of this application.")

    if not (app.is_active and app.org_is_active):
        raise IngestError(403, "app_disabled", "This application or its organization is disabled.")

    skew = abs(time.time() - timestamp)
    if skew > settings.CLACKS_TIMESTAMP_TOLERANCE:
        raise IngestError(
            403,
            "timestamp_out_of_range",
            f"X-Timestamp is {int(skew)} s away from server time "
            f"(allowed: {settings.CLACKS_TIMESTAMP_TOLERANCE} s). Check the client's clock.",
        )
    if nonce and not remember_nonce(app.pk, nonce, request_time=timestamp):
        raise IngestError(409, "nonce_reused", "This X-Nonce was already used; sign each attempt anew.")
    return app


def signed_by(app: IngestApp, signature: str, timestamp: str, nonce: str | None, raw: bytes, body: bytes) -> bool:
    """Gzip bodies may be signed as sent or as inflated; accept either.

    IngestError(503) when no secret the server can read signed it but some
    secret cannot be read (organizations.crypto): the request may be signed
    with that one, so it is not refused for good."""
    secrets, problem = app.secrets()
    if signature_matches(secrets, signature=signature, timestamp=timestamp, nonce=nonce, body=raw) or (
        body is not raw and signature_matches(secrets, signature=signature, timestamp=timestamp, nonce=nonce, body=body)
    ):
        return True
    if problem is not None:
        logger.error("ingest for %s answers 503: %s", app.public_id, problem)
        raise secrets_unreadable()
    return False
