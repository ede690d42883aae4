"""Sign requests the way the SDK does (docs/protocol.md, Signature), for tests."""

from __future__ import annotations

import time
import uuid

from telemetry.auth import sign


def ingest_path(app) -> str:
    return f"/v1/ingest/{app.organization.public_id}/{app.public_id}"


def signed_headers(secret: str, body: bytes, *, timestamp=None, nonce: str | None = "new") -> dict:
    """Django test-client keyword arguments (HTTP_…) for a signed request."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = str(uuid.uuid4()) if nonce == "new" else nonce
    headers = {
        "HTTP_X_TIMESTAMP": timestamp,
        "HTTP_X_SIGNATURE": sign(secret, timestamp, body, nonce),
        "HTTP_X_SDK_VERSION": "telemetry-kit-rust/0.3.0",
        "HTTP_X_SCHEMA_VERSION": "1.0.0",
    }
    if nonce is not None:
        headers["HTTP_X_NONCE"] = nonce
    return headers


def current_secret(app) -> str:
    return app.credentials.active().first().reveal_secret()
