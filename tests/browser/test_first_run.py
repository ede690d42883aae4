"""The whole product through a browser, as a new user meets it (issue 4, item 9):
first admin, organization, app, credentials, a signed batch, the analytics
changing, retention, and a viewer who cannot see the credentials."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from telemetry.auth import sign
from telemetry.models import Event
from tests.browser.conftest import PHONE, path_of, shoot
from tests.factories import iso, make_event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "plum-tree-harbour-42"


def sdk_event(when: datetime, *, os: str, version: str, type: str = "command_execution", data: dict) -> dict:
    event = make_event(
        timestamp=iso(when),
        user_id="client_" + uuid.uuid4().hex,
        service={"name": "forge-cli", "version": version, "language": "rust"},
        environment={"os": os, "arch": "x86_64", "ci": False},
        event={"type": type, "category": "usage", "data": data},
    )
    return event


def post_signed_batch(base_url: str, *, org_id: str, app_id: str, token: str, secret: str, events: list) -> tuple[int, dict]:
    """POST a batch the way the SDK does (docs/protocol.md, Signature), through the live server."""
    body = orjson.dumps({"events": events})
    timestamp, nonce = str(int(time.time())), str(uuid.uuid4())
    request = urllib.request.Request(
        f"{base_url}/v1/ingest/{org_id}/{app_id}",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": sign(secret, timestamp, body, nonce),
            "X-Batch-Size": str(len(events)),
        },
    )
    # No proxy, whatever the environment says: the live server is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def stat(page: Page, label: str) -> str:
    """The figure shown under a totals heading ("Events", "Users", ...)."""
    return page.locator(".summary .stat", has=page.get_by_role("heading", name=label, exact=True)).first.locator(
        ".stat-value"
    ).inner_text()


def breakdown_rows(page: Page, title: str) -> dict[str, str]:
    """{value: count} of one breakdown card."""
    table = page.locator("table.bar-table", has=page.get_by_role("heading", name=title, exact=True))
    rows = {}
    for row in table.locator("tbody tr").all():
        rows[row.locator("th").inner_text().strip()] = row.locator("td").first.inner_text().strip()
    return rows


def test_a_new_admin_sets_up_clacks_sends_events_and_invites_a_viewer(open_page, live_server):
    page = open_page()

    # --- First run: the only way in is creating the first admin. ---
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/setup/")
    expect(page).to_have_title("Create the first admin · Clacks")
    shoot(page, "01-setup")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create admin account").click()

    # --- An organization, then an app. ---
    expect(page.get_by_role("heading", name="Organizations", exact=True)).to_be_visible()
    shoot(page, "02-organizations")
    page.get_by_label("Organization name").fill("Acme Tools")
    page.get_by_role("button", name="Create organization").click()
    page.get_by_label("App name").fill("forge-cli")
    shoot(page, "03-app-create")
    page.get_by_role("button", name="Create app").click()

    # --- Credentials: read them off the page, and the copy button copies. ---
    expect(page.get_by_role("heading", name="Copy these now")).to_be_visible()
    org_id = page.locator("#org-id").inner_text().strip()
    app_id = page.locator("#app-id").inner_text().strip()
    token = page.locator("#issued-token").inner_text().strip()
    secret = page.locator("#issued-secret").inner_text().strip()
    assert org_id.startswith("org_") and app_id.startswith("app_") and token and secret
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.get_by_role("button", name="Copy token").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    shoot(page, "04-credentials")

    # --- Before any event the app's page says how to set up the SDK. ---
    app_url = f"/orgs/{org_id}/apps/{app_id}/"
    page.goto(app_url)
    expect(page.get_by_role("heading", name="No events yet")).to_be_visible()
    expect(page.get_by_role("link", name="Set up the SDK")).to_have_attribute("href", f"{app_url}credentials/")
    shoot(page, "05-app-overview-empty")

    # --- A signed batch, sent the SDK's way through the live server. ---
    now = datetime.now(timezone.utc)
    first_batch = [
        sdk_event(now - timedelta(minutes=5), os="linux", version="1.2.0", data={"command": "build", "success": True, "duration_ms": 850}),
        sdk_event(now - timedelta(minutes=4), os="linux", version="1.2.0", data={"command": "build", "success": True, "duration_ms": 910}),
        sdk_event(now - timedelta(minutes=3), os="linux", version="1.2.0", data={"command": "test", "success": False, "duration_ms": 4200}),
        sdk_event(now - timedelta(minutes=2), os="linux", version="1.2.0", type="feature_used", data={"feature": "cache"}),
        # Older than the 30-day retention set further down.
        sdk_event(now - timedelta(days=40), os="linux", version="1.1.0", data={"command": "build", "success": True}),
    ]
    status, answer = post_signed_batch(live_server.url, org_id=org_id, app_id=app_id, token=token, secret=secret, events=first_batch)
    assert (status, answer["accepted"]) == (200, 5), answer

    page.goto(app_url)
    expect(page.get_by_role("heading", name="Breakdowns")).to_be_visible()
    assert stat(page, "Events") == "4"
    expect(page.locator("figure.chart desc")).to_contain_text("Total 4 events")
    assert breakdown_rows(page, "Operating system") == {"linux": "4"}
    assert breakdown_rows(page, "Event type") == {"command_execution": "3", "feature_used": "1"}
    expect(page.locator(".commands")).to_contain_text("66.7%")  # two of three commands succeeded
    shoot(page, "06-app-overview-first-batch")

    # --- A second batch changes the chart and the breakdowns. ---
    second_batch = [
        sdk_event(now - timedelta(minutes=1), os="macos", version="1.3.0", data={"command": "build", "success": True, "duration_ms": 700})
        for _ in range(3)
    ]
    status, answer = post_signed_batch(live_server.url, org_id=org_id, app_id=app_id, token=token, secret=secret, events=second_batch)
    assert (status, answer["accepted"]) == (200, 3), answer
    page.reload()
    assert stat(page, "Events") == "7"
    expect(page.locator("figure.chart desc")).to_contain_text("Total 7 events")
    assert breakdown_rows(page, "Operating system") == {"linux": "4", "macos": "3"}
    assert breakdown_rows(page, "Service version") == {"1.2.0": "4", "1.3.0": "3"}
    shoot(page, "07-app-overview")

    page.get_by_role("link", name="Last 24 hours").click()
    expect(page.locator("figcaption")).to_have_text("Events per hour (UTC)")
    page.get_by_text("Show the numbers as a table").click()
    expect(page.locator(".chart-table table")).to_be_visible()
    shoot(page, "08-app-overview-24h")

    # A custom range with the dates the wrong way round is a message, not an error page.
    page.get_by_label("From (UTC)").fill("2026-03-10")
    page.get_by_label("To (UTC, included)").fill("2026-03-01")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_contain_text("The end date is before the start date.")

    # --- The organization's overview lists the app with its counts. ---
    page.goto(f"/orgs/{org_id}/")
    row = page.locator(".apps tbody tr", has_text="forge-cli")
    expect(row.locator("td").first).to_have_text("7")
    shoot(page, "09-org-overview")

    # --- The explorer and one event's JSON. ---
    page.goto(f"{app_url}events/")
    expect(page.locator(".events-table tbody tr")).to_have_count(8)
    page.get_by_label("Event type").fill("feature_used")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".events-table tbody tr")).to_have_count(1)
    shoot(page, "10-events")
    page.locator(".events-table tbody tr a").first.click()
    expect(page.locator("pre.json").first).to_contain_text('"feature": "cache"')
    shoot(page, "11-event-detail")

    # --- Retention: preview what 30 days would remove, save it, and purge. ---
    page.goto(f"/orgs/{org_id}/settings/")
    retention = page.locator("#retention")
    retention.get_by_label("30 days", exact=True).check()
    retention.get_by_role("button", name="Preview").click()
    expect(page.locator("#retention .preview, .preview").first).to_contain_text("delete 1 event")
    page.locator("#retention").get_by_label("30 days", exact=True).check()
    page.locator("#retention").get_by_role("button", name="Save retention").click()
    expect(page.locator("#retention")).to_contain_text("Now: 30 days")
    shoot(page, "12-org-settings-retention")
    call_command("purge_events", stdout=open("/dev/null", "w"))
    assert Event.objects.count() == 7
    page.goto(f"{app_url}events/")
    expect(page.locator(".events-table tbody tr")).to_have_count(7)

    # --- Invite a viewer, who then reads analytics but not credentials. ---
    page.goto(f"/orgs/{org_id}/members/")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Create invitation link").click()
    invite_url = page.locator(".invitation.highlight code").inner_text().strip()
    assert "/invite/" in invite_url
    shoot(page, "13-members")
    page.goto(f"/orgs/{org_id}/audit/")
    shoot(page, "14-audit")

    viewer = open_page()
    viewer.goto(path_of_url(invite_url))
    expect(viewer.get_by_role("heading", name="Join Acme Tools")).to_be_visible()
    shoot(viewer, "15-invitation")
    viewer.get_by_label("Username").fill("grace")
    viewer.get_by_label("Password", exact=True).fill(PASSWORD)
    viewer.get_by_label("Password confirmation").fill(PASSWORD)
    viewer.get_by_role("button", name="Create account and join").click()
    expect(viewer.get_by_text("You joined Acme Tools as viewer.")).to_be_visible()

    viewer.goto(app_url)
    assert stat(viewer, "Events") == "7"
    expect(viewer.locator("nav.subnav-app").get_by_role("link", name="Credentials")).to_have_count(0)
    shoot(viewer, "16-viewer-app-overview")
    response = viewer.goto(f"{app_url}credentials/")
    assert response.status == 403
    expect(viewer.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert secret not in viewer.content() and token not in viewer.content()
    shoot(viewer, "17-viewer-credentials-refused")
    viewer.goto(f"/orgs/{org_id}/")
    assert "/credentials/" not in viewer.content()


def path_of_url(url: str) -> str:
    """An absolute link shown on a page, made relative to the live server."""
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1]


def test_the_analytics_pages_fit_a_phone_screen(open_page, live_server, alice, org, app, secret, token):
    now = datetime.now(timezone.utc)
    events = [
        sdk_event(now - timedelta(hours=h), os=("linux", "macos", "windows")[h % 3], version="1.2.0",
                  data={"command": "a-rather-long-command-name-" + str(h % 4), "success": h % 5 != 0, "duration_ms": 100 * h})
        for h in range(1, 60)
    ]
    status, _ = post_signed_batch(
        live_server.url, org_id=org.public_id, app_id=app.public_id, token=token, secret=secret, events=events
    )
    assert status == 200
    event = Event.objects.filter(app=app).first()
    page = open_page(viewport=PHONE)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(f"{live_server.url}/accounts/login/")

    base = f"/orgs/{org.public_id}/apps/{app.public_id}/"
    for name, url in [
        ("phone-org-overview", f"/orgs/{org.public_id}/"),
        ("phone-app-overview", base),
        ("phone-events", f"{base}events/"),
        ("phone-event-detail", f"{base}events/{event.event_id}/"),
    ]:
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path_of(page)} is {width} px wide on a {PHONE['width']} px screen"
        shoot(page, name)
