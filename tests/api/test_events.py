"""The events endpoint: cursor pagination over every event, filters, and one event by id."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.dashboard.conftest import sdk_event, store


def events_path(org, app) -> str:
    return f"/api/v1/orgs/{org.public_id}/apps/{app.public_id}/events/"


def test_pages_walk_every_event_once_both_ways(api, make_key, org, app):
    now = datetime.now(timezone.utc)
    # Several events share a timestamp: the cursor's (timestamp, id) order keeps them apart.
    store(app, *[sdk_event(now - timedelta(minutes=n // 3), user=f"u{n}") for n in range(25)], now=now)
    token = make_key("events")
    seen, pages, cursor = [], [], None
    while True:
        response = api("GET", events_path(org, app) + "?limit=7" + (f"&before={cursor}" if cursor else ""), token)
        assert response.status_code == 200
        body = response.json()
        pages.append(body)
        seen += [e["event_id"] for e in body["events"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert [len(p["events"]) for p in pages] == [7, 7, 7, 4]
    assert len(seen) == len(set(seen)) == 25
    stamps = [e["timestamp"] for p in pages for e in p["events"]]
    assert stamps == sorted(stamps, reverse=True)
    assert pages[0]["previous"] is None
    # Back from the last page, newer and newer, to the first.
    back = api("GET", events_path(org, app) + f"?limit=7&after={pages[-1]['previous']}", token).json()
    assert [e["event_id"] for e in back["events"]] == [e["event_id"] for e in pages[-2]["events"]]


def test_an_event_comes_back_as_the_sdk_sent_it(api, make_key, org, app):
    now = datetime.now(timezone.utc)
    event = sdk_event(now, user="x", data={"command": "build", "nested": {"a": [1, 2]}, "success": True})
    store(app, event, now=now)
    token = make_key("events")
    listed = api("GET", events_path(org, app), token).json()["events"][0]
    one = api("GET", events_path(org, app) + f"{event['event_id']}/", token).json()
    assert listed == one
    assert one["event"]["data"] == event["event"]["data"]
    assert one["user_id"] == event["user_id"] and one["service"]["version"] == "1.2.0"
    assert one["received_at"].endswith("Z")


def test_filters_narrow_the_list(api, make_key, org, app):
    now = datetime.now(timezone.utc)
    store(app, sdk_event(now, user="a", os="linux"), sdk_event(now, user="b", os="macos", type="feature_used",
          data={"feature": "x"}), sdk_event(now - timedelta(days=10), user="a", os="linux"), now=now)  # fmt: skip
    token = make_key("events")

    def users(query: str) -> list[str]:
        return sorted(e["user_id"] for e in api("GET", events_path(org, app) + "?" + query, token).json()["events"])

    assert users("") == ["client_a", "client_a", "client_b"]
    assert users("os=macos") == ["client_b"]
    assert users("type=command_execution&range=7d") == ["client_a"]
    assert users("user=client_a") == ["client_a", "client_a"]
    assert users("until=" + (now - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")) == ["client_a"]
