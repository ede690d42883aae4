"""The issue's "done when": on a running server with its scheduler, a test client's
events stopping fire a silence alert that reaches a local webhook receiver and a
local SMTP server once, and the alert resolves when events resume."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from alerts.delivery import LEASE
from tests.alerts.conftest import verify
from tests.factories import iso, make_batch
from tests.operations import servers

SETUP = """
from organizations.models import App
from alerts import services
from alerts.models import ChannelKind, RuleKind
app = App.objects.select_related("organization").get(public_id="{app_id}")
services.create_rule(app, name="events stopped", kind=RuleKind.SILENCE, minutes=1, cooldown_minutes=0)
services.create_channel(app.organization, name="mail", kind=ChannelKind.EMAIL, recipients="ops@example.com")
print(services.create_channel(app.organization, name="hooks", kind=ChannelKind.WEBHOOK, url="{url}")[1])
"""


def shell(code: str, env: dict[str, str]) -> list[str]:
    """The words `manage.py shell -c code` printed last; its stderr in the failure if it failed."""
    done = servers.manage("shell", "-c", code, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def wait_for(condition, *, timeout: float, what: str, server: servers.Server):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout} s; server log:\n{server.log_path.read_text()[-4000:]}")


@pytest.fixture
def database(tmp_path):
    url = servers.fresh_database_url(tmp_path, "alerts_e2e")
    env = servers.base_env(DATABASE_URL=url, CLACKS_VAR_DIR=str(tmp_path / "var"))
    servers.prepare(env)
    servers.manage("migrate", "--noinput", env=env)
    yield url
    servers.drop_database(url)


def test_a_silence_alert_reaches_a_webhook_and_an_smtp_server_once_and_resolves(tmp_path, database, receiver, smtp_server):
    env = servers.base_env(DATABASE_URL=database, CLACKS_VAR_DIR=str(tmp_path / "var"))
    issued = servers.create_app(env, name="e2e-cli")
    secret = shell(SETUP.format(app_id=issued.app_id, url=receiver.url), env)[-1]  # the last word: logs may come first

    server = servers.start_gunicorn(
        tmp_path, database, workers=1,
        CLACKS_SCHEDULER="on", CLACKS_SCHEDULER_PERIODS="alerts=2,deliveries=1",
        CLACKS_WEBHOOK_ALLOW_PRIVATE="True", EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_server.port),
    )  # fmt: skip
    try:
        # The client's last events, sent late (the SDK buffers offline): the newest is 5 minutes old.
        old = iso(datetime.now(timezone.utc) - timedelta(minutes=5))
        assert servers.signed_post(server.port, issued, orjson.dumps(make_batch(3, timestamp=old))).status == 200
        wait_for(lambda: len(receiver.received) >= 1 and len(smtp_server.messages) >= 1, timeout=150,
                 what="the firing notification", server=server)

        # Events resume.
        assert servers.signed_post(server.port, issued, orjson.dumps(make_batch(1))).status == 200
        wait_for(lambda: len(receiver.received) >= 2 and len(smtp_server.messages) >= 2, timeout=150,
                 what="the resolve notification", server=server)
        time.sleep(4)  # several more delivery and evaluation runs: nothing is sent again
    finally:
        server.stop()

    bodies = [item.json() for item in receiver.received]
    assert [body["state"] for body in bodies] == ["firing", "resolved"]
    assert all(verify(secret, item) for item in receiver.received)
    assert len({body["idempotency_key"] for body in bodies}) == 2
    assert bodies[0]["rule"]["name"] == "events stopped" and bodies[0]["app"]["id"] == issued.app_id
    subjects = [message["Subject"] for message in smtp_server.parsed()]
    assert subjects == ["[Clacks] FIRING: events stopped on e2e-cli", "[Clacks] Resolved: events stopped on e2e-cli"]


NOTIFY = """
from organizations.models import Organization
from alerts import services
from alerts.models import ChannelKind
org = Organization.objects.get(public_id="{org_id}")
channel, secret = services.create_channel(org, name="hooks", kind=ChannelKind.WEBHOOK, url="{url}")
print(services.send_test(channel).idempotency_key)
"""
DELIVER = """
from datetime import timedelta
from django.utils import timezone
from alerts import delivery
result = delivery.deliver_due(now=timezone.now() + timedelta(seconds={ahead}))
print(result.delivered, result.failed)
"""
STATE = """
from alerts.models import Notification
n = Notification.objects.get()
print(n.status, n.attempts, n.delivery_attempts.count(), n.lease_until is not None)
"""


def test_a_delivery_process_killed_mid_call_loses_nothing(tmp_path, database, receiver):
    env = servers.base_env(DATABASE_URL=database, CLACKS_VAR_DIR=str(tmp_path / "var"), CLACKS_WEBHOOK_ALLOW_PRIVATE="True",
                           CLACKS_WEBHOOK_TIMEOUT_SECONDS="30")
    issued = servers.create_app(env, name="kill-cli")
    key = shell(NOTIFY.format(org_id=issued.org_id, url=receiver.url), env)[-1]

    receiver.hold = threading.Event()  # the receiver keeps the request open: the call is in flight
    process = subprocess.Popen([str(servers.BIN / "python"), "manage.py", "shell", "-c", DELIVER.format(ahead=0)],
                               cwd=servers.REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert receiver.arrived.wait(60), "the delivery never reached the receiver"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    receiver.hold.set()

    # Nothing recorded, nothing lost: still pending, held by the dead process' lease.
    assert shell(STATE, env)[-4:] == ["pending", "0", "0", "True"]
    assert shell(DELIVER.format(ahead=0), env)[-2:] == ["0", "0"]
    # Once the lease has ended, the next run sends it again, with the same key.
    ahead = int(LEASE.total_seconds()) + 1
    assert shell(DELIVER.format(ahead=ahead), env)[-2:] == ["1", "0"]
    assert shell(STATE, env)[-4:] == ["delivered", "1", "1", "False"]
    assert receiver.keys() == [key, key]  # the receiver sees the repeat by its key
