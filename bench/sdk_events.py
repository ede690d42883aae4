"""SDK-shaped events for the benchmarks: what telemetry-kit 0.3 sends (docs/protocol.md, Event fields).

Shared by ingest_load.py (HTTP bodies) and storage_ceiling.py (the same events
written with COPY), so both measure the same bytes. Standard library plus
orjson only: the load generator's worker processes must stay light.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import uuid
from datetime import datetime, timezone

import orjson

SDK_VERSION = "telemetry-kit-rust/0.3.0"

# A small realistic mix; seed_events.py has the full distributions.
_COMMANDS = ("build", "test", "run", "deploy", "init", "fmt", "lint", "publish")
_FEATURES = ("cache", "remote", "watch", "plugins", "completion")
_PLATFORMS = (("linux", "x86_64"), ("linux", "aarch64"), ("macos", "aarch64"), ("macos", "x86_64"), ("windows", "x86_64"))
_SHELLS = ("bash", "zsh", "fish", "powershell")


def rfc3339(moment: datetime) -> str:
    """The SDK's form: UTC, 'Z', nine fractional digits (docs/protocol.md, Event fields)."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}{random.randrange(1000):03d}Z"


def make_event(rng: random.Random, *, now: datetime, event_id: str | None = None, service: str = "bench-cli") -> dict:
    """One event as the SDK serializes it: keys in the SDK's order, data keys sorted, ~680 bytes."""
    os_name, arch = rng.choice(_PLATFORMS)
    stamp = rfc3339(now)
    if rng.random() < 0.8:
        event = {
            "type": "command_execution",
            "category": "usage",
            "data": {
                "command": rng.choice(_COMMANDS),
                "duration_ms": int(rng.lognormvariate(6.5, 1.2)),
                "flags": ["--release"] if rng.random() < 0.3 else [],
                "success": rng.random() < 0.93,
            },
        }
    else:
        event = {
            "type": "feature_used",
            "category": "library",
            "data": {"feature": rng.choice(_FEATURES), "method": "default", "success": True},
        }
    return {
        "schema_version": "1.0.0",
        "event_id": event_id or str(uuid.uuid4()),
        "timestamp": stamp,
        "service": {"name": service, "version": "1.4.2", "language": "rust", "language_version": "1.75.0"},
        "user_id": "client_" + hashlib.sha256(str(rng.randrange(5000)).encode()).hexdigest(),
        "session_id": "sess_" + uuid.UUID(int=rng.getrandbits(128)).hex,
        "environment": {"os": os_name, "arch": arch, "ci": rng.random() < 0.15, "shell": rng.choice(_SHELLS)},
        "event": event,
        "metadata": {"sdk_version": SDK_VERSION, "transmission_timestamp": stamp, "batch_size": 1, "retry_count": 0},
    }


class BodyFactory:
    """Request bodies of `batch_size` events with fresh random event ids, cheaply.

    Events are serialized once into a pool split around their event_id; each
    body only joins pool entries with new uuid4s (a few microseconds per event),
    so the client spends its CPU on sending, not on building JSON."""

    _MARK = "00000000-0000-4000-8000-000000000000"

    def __init__(self, *, batch_size: int, pool: int = 1000, seed: int | None = None, now: datetime | None = None):
        rng = random.Random(seed)
        now = now or datetime.now(timezone.utc)
        self.batch_size = batch_size
        self._parts: list[tuple[str, str]] = []
        for _ in range(pool):
            text = orjson.dumps(make_event(rng, now=now, event_id=self._MARK)).decode()
            head, tail = text.split(self._MARK)
            self._parts.append((head, tail))
        self._rng = rng

    def body(self) -> bytes:
        """About 170 us for 100 events: str(uuid.uuid4()) alone would take twice that."""
        n = self.batch_size
        chosen = self._rng.sample(self._parts, n) if n <= len(self._parts) else self._rng.choices(self._parts, k=n)
        h = os.urandom(16 * n).hex()
        # Random UUIDs with the version 4 and RFC 4122 variant nibbles set.
        ids = (f"{h[i:i+8]}-{h[i+8:i+12]}-4{h[i+13:i+16]}-a{h[i+17:i+20]}-{h[i+20:i+32]}" for i in range(0, 32 * n, 32))
        return ('{"events":[' + ",".join(f"{head}{uid}{tail}" for uid, (head, tail) in zip(ids, chosen)) + "]}").encode()

    def mean_event_bytes(self) -> float:
        return sum(len(h) + 36 + len(t) for h, t in self._parts) / len(self._parts)


def sign(secret: str, timestamp: str, body: bytes, nonce: str) -> str:
    """X-Signature, the SDK's form (docs/protocol.md, Signature)."""
    return hmac.new(secret.encode(), f"{timestamp}:{nonce}:".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: int, batch_size: int) -> dict[str, str]:
    """The headers the SDK sends, with a new nonce (docs/protocol.md, Request headers)."""
    nonce = str(uuid.uuid4())
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json",
        "X-Signature": sign(secret, stamp, body, nonce),
        "X-Timestamp": stamp,
        "X-Nonce": nonce,
        "X-Batch-Size": str(batch_size),
        "X-SDK-Version": SDK_VERSION,
        "X-Schema-Version": "1.0.0",
        "Accept": "*/*",
    }
