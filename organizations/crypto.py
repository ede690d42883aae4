"""Encryption at rest for HMAC secrets.

The server needs the plain secret to check signatures, so secrets are encrypted
(not hashed) with Fernet. Keys come from CLACKS_SECRETS_KEY (newest first); when
it is unset a key is derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretsUnreadable(ImproperlyConfigured):
    """The configured keys cannot read the HMAC secrets: CLACKS_SECRETS_KEY is not
    a list of Fernet keys, or it (or SECRET_KEY) changed without keeping the old key.
    The message names the cause and never a secret."""


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = hashlib.sha256(b"clacks-secrets:" + secret_key.encode()).digest()
        keys = (base64.urlsafe_b64encode(derived).decode(),)
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise SecretsUnreadable(
            "CLACKS_SECRETS_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
        ) from None


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CLACKS_SECRETS_KEYS), settings.SECRET_KEY)


def encrypt_secret(secret: str) -> str:
    return fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretsUnreadable(
            "An HMAC secret cannot be decrypted: CLACKS_SECRETS_KEY (or SECRET_KEY) changed "
            "without keeping the old key"
        ) from None


def new_hmac_secret() -> str:
    """32 random bytes as base64 text. The SDK uses the text's UTF-8 bytes as the key."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def new_api_token() -> str:
    return "clk_" + secrets.token_urlsafe(32)
