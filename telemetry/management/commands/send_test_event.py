import time
import urllib.error
import urllib.request
import uuid

import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from organizations.endpoints import public_url
from organizations.models import App
from telemetry.auth import sign

SDK_VERSION = "clacks-send-test-event/1.0"


def test_batch() -> bytes:
    """A one-event batch shaped like the SDK's, marked as a test in its data."""
    now = timezone.now().isoformat().replace("+00:00", "Z")
    event = {
        "schema_version": "1.0.0",
        "event_id": str(uuid.uuid4()),
        "timestamp": now,
        "service": {"name": "clacks-test", "version": settings.CLACKS_VERSION, "language": "python"},
        "user_id": "client_" + uuid.uuid4().hex * 2,
        "session_id": "sess_" + uuid.uuid4().hex,
        "environment": {"os": "linux", "ci": False},
        "event": {"type": "test_event", "category": "diagnostics", "data": {"source": "send_test_event"}},
        "metadata": {"sdk_version": SDK_VERSION, "transmission_timestamp": now, "batch_size": 1, "retry_count": 0},
    }
    return orjson.dumps({"events": [event]})


class Command(BaseCommand):
    help = "Post a signed test batch for an app to a running server, to check a deployment end to end."

    def add_arguments(self, parser):
        parser.add_argument("app_id")
        parser.add_argument(
            "--url", default=None, help="Server base URL (default: CLACKS_PUBLIC_URL, else http://127.0.0.1:$PORT)."
        )
        parser.add_argument("--secret", help="HMAC secret; default: the app's newest active secret from the database.")

    def handle(self, *, app_id: str, url: str | None, secret: str | None, **options):
        url = url or public_url()
        app = App.objects.select_related("organization").filter(public_id=app_id).first()
        if app is None:
            raise CommandError(f"No app with id {app_id!r}.")
        if secret is None:
            credential = app.credentials.active().first()
            if credential is None:
                raise CommandError("The app has no active credentials; rotate them first.")
            secret = credential.reveal_secret()
        body = test_batch()
        timestamp, nonce = str(int(time.time())), str(uuid.uuid4())
        request = urllib.request.Request(
            url.rstrip("/") + app.ingest_path,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Signature": sign(secret, timestamp, body, nonce),
                "X-Timestamp": timestamp,
                "X-Nonce": nonce,
                "X-Batch-Size": "1",
                "X-SDK-Version": SDK_VERSION,
                "X-Schema-Version": "1.0.0",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(f"Could not reach {url}: {getattr(exc, 'reason', exc)}") from None
        self.stdout.write(f"{status} {text}")
        if status != 200:
            raise CommandError(f"The server answered {status}.")
        self.stdout.write(self.style.SUCCESS("The test event was accepted."))
