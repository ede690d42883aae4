"""Alerts fixtures: events of a given shape and time, a webhook receiver and an SMTP
server on 127.0.0.1, and channels pointing at them."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import pytest
from django.utils import timezone

from alerts import services
from alerts.models import ChannelKind
from telemetry.ingest import validate_events
from telemetry.storage import store_batch
from tests.factories import iso, make_event


def store(app, *, at: datetime, n: int = 1, success: bool | None = True, command: str = "build", version: str = "1.2.0",
          received_at: datetime | None = None) -> int:
    """n command runs of the app at `at`, stored the way ingest stores them."""
    data = {"command": command, "duration_ms": 100}
    if success is not None:
        data["success"] = success
    events = [
        make_event(
            timestamp=iso(at), event={"type": "command_execution", "category": "usage", "data": data},
            service={"name": "my-cli", "version": version, "language": "rust"},
        )
        for _ in range(n)
    ]  # fmt: skip
    moment = received_at or max(at, timezone.now())
    batch = validate_events(events, now=moment)
    assert batch.errors == []
    return store_batch(app.pk, batch.rows, received_at=moment)


@pytest.fixture
def now():
    """A fixed moment in the middle of a minute, hour and day."""
    return timezone.now().replace(minute=30, second=30, microsecond=0) - timedelta(hours=1)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self):
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers `status` (503 while "down"), or redirects
    to `redirect_to`, and records every request it answered."""

    port: int = 0
    status: int = 200
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    # Set to make the next request wait until released (a delivery "in flight").
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def keys(self) -> list[str]:
        return [item.headers.get("x-clacks-idempotency-key", "") for item in self.received]

    def delivered(self) -> list[Received]:
        """The requests answered with success: what the receiver accepted."""
        return [item for item, ok in zip(self.received, self._ok) if ok]

    def __post_init__(self):
        self._ok: list[bool] = []


@pytest.fixture
def receiver():
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.arrived.set()
            if state.hold is not None:
                state.hold.wait(10)
            if state.redirect_to:
                self.send_response(302)
                self.send_header("Location", state.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            state._ok.append(200 <= state.status < 300)
            answer = b'{"ok":true}' if state.status < 300 else b"receiver is down"
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.hold is not None:
        state.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_private(settings):
    """The local receiver is on 127.0.0.1, which the guard refuses unless allowed."""
    settings.CLACKS_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def webhook(org, receiver, allow_private):
    """(channel, signing secret) of a webhook channel pointing at the receiver."""
    return services.create_channel(org, name="hooks", kind=ChannelKind.WEBHOOK, url=receiver.url)


def verify(secret: str, received: Received) -> bool:
    """The receiver's side of the signature, as the README shows it."""
    timestamp = received.headers["x-clacks-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}:".encode() + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers["x-clacks-signature"])


@dataclass
class Mailbox:
    """What the local SMTP server received: (envelope sender, recipients, message bytes)."""

    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    def parsed(self):
        import email
        from email import policy

        return [email.message_from_bytes(data, policy=policy.default) for _, _, data in self.messages]


def free_loopback_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on 127.0.0.1, and Django's SMTP backend pointed at it.
    mailbox.stop() and mailbox.start() take it down and bring it back on the same port."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(port=free_loopback_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            mailbox.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            return "250 Message accepted for delivery"

    running = []

    def start():
        controller = Controller(Handler(), hostname="127.0.0.1", port=mailbox.port)  # a stopped one cannot start again
        controller.start()
        running.append(controller)

    def stop():
        running.pop().stop()

    mailbox.start, mailbox.stop = start, stop
    start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # pytest-django swaps in locmem
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", mailbox.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield mailbox
    while running:
        stop()
