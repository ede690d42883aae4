"""The analytics pages: who may see them, what they show, and how they take bad input."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from telemetry.databases import events_connection
from telemetry.models import Event
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_app, make_org
from tests.queries import capture_queries


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def events(app, now):
    """Three events of the last day and one from three weeks ago."""
    store(
        app,
        sdk_event(now - timedelta(hours=1), user="a", data={"command": "build", "success": True, "duration_ms": 120}),
        sdk_event(now - timedelta(hours=2), user="b", os="macos", data={"command": "test", "success": False, "duration_ms": 80}),
        sdk_event(now - timedelta(hours=3), user="b", type="feature_used", category="library", data={"feature": "auth"}),
        sdk_event(now - timedelta(days=21), user="c"),
        now=now,
    )
    return Event.objects.filter(app=app)


def org_url(org) -> str:
    return reverse("dashboard:org_overview", kwargs={"org_id": org.public_id})


def app_url(app, name: str = "app_overview", **extra) -> str:
    return reverse(f"dashboard:{name}", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id, **extra})


def page_urls(app, event) -> list[str]:
    return [
        org_url(app.organization),
        app_url(app),
        app_url(app, "app_events"),
        app_url(app, "event_detail", event_id=event.event_id),
    ]


def event_rows(response) -> int:
    """How many events the explorer lists (each row links to its event)."""
    return len(re.findall(r'/events/[0-9a-f-]{36}/"', response.content.decode()))


def text(response) -> str:
    """The page's visible text, tags stripped and whitespace folded."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- Access -----------------------------------------------------------------------------------


def heading(response) -> str:
    match = re.search(r"<h1>(.*?)</h1>", response.content.decode(), flags=re.S)
    assert match, "the page has no heading"
    return " ".join(re.sub(r"<[^>]+>", " ", match[1]).split())


def assert_not_found(response, url: str = "") -> None:
    assert response.status_code == 404, url
    assert heading(response) == "Not found"


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_owner_and_viewer_can_read_every_analytics_page(client, request, app, events, who):
    client.force_login(request.getfixturevalue(who))
    event = events.first()
    headings = ["Alice Org", "my-cli", "Recent events", f"{event.event_type} event"]

    for url, expected in zip(page_urls(app, event), headings, strict=True):
        response = client.get(url)
        assert response.status_code == 200, url
        assert heading(response) == expected


def test_charlie_gets_404_on_every_page_of_alices_organization(client, charlie, app, events):
    client.force_login(charlie)

    for url in page_urls(app, events.first()):
        response = client.get(url)
        assert_not_found(response, url)
        assert "Alice Org" not in text(response) and "my-cli" not in text(response)


def test_an_anonymous_visitor_is_sent_to_log_in(client, app, events):
    for url in page_urls(app, events.first()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_an_app_of_another_organization_is_not_found_under_this_one(client, alice, org, charlie):
    elsewhere, _ = make_app(make_org(name="Charlie Org", owner=charlie), name="secret-cli")
    client.force_login(alice)

    url = reverse("dashboard:app_overview", kwargs={"org_id": org.public_id, "app_id": elsewhere.public_id})
    response = client.get(url)
    assert_not_found(response)
    assert "secret-cli" not in text(response)


def test_an_event_of_another_app_is_not_found_under_this_one(client, alice, org, app, events):
    sibling, _ = make_app(org, name="sibling")
    client.force_login(alice)

    assert_not_found(client.get(app_url(sibling, "event_detail", event_id=events.first().event_id)))
    assert_not_found(client.get(app_url(app, "event_detail", event_id=uuid.uuid4())))
    assert_not_found(client.get(app_url(app, "app_events") + "not-a-uuid/"))


def test_analytics_pages_only_answer_get(client, alice, app, events):
    client.force_login(alice)

    for url in page_urls(app, events.first()):
        response = client.post(url)
        assert response.status_code == 405, url
        assert response["Allow"] == "GET, HEAD"


# --- What they show --------------------------------------------------------------------------


def test_the_app_page_shows_totals_chart_breakdowns_and_commands(client, alice, app, events):
    client.force_login(alice)

    response = client.get(app_url(app), {"range": "24h"})

    page = text(response)
    assert "Events 3" in page and "Users 2" in page
    assert "Events per hour (UTC)" in page
    assert response.content.decode().count('class="chart-bucket"') == 24
    assert "Share linux 2 66.7% macos 1 33.3%" in page
    assert "Success rate 50%" in page
    assert "120 ms" in page  # the p90 and p99 of 80 and 120
    assert "build 1 0 100% 120 ms" in page


def test_the_organization_page_lists_each_app_with_its_counts(client, bob, org, app, events, now):
    other, _ = make_app(org, name="quiet-cli")
    client.force_login(bob)

    response = client.get(org_url(org))

    page = text(response)
    assert "my-cli 3 2" in page
    assert "quiet-cli 0 0 never" in page
    assert "Events per day (UTC)" in page
    assert app_url(app) + "?range=7d" in response.content.decode()


def test_a_viewer_is_not_offered_credential_links(client, bob, org, app, events):
    client.force_login(bob)

    html = client.get(org_url(org)).content.decode()

    assert "/credentials/" not in html


def test_a_custom_range_of_two_days_is_counted_per_hour(client, alice, app, events, now):
    client.force_login(alice)
    today = now.date()

    response = client.get(app_url(app), {"range": "custom", "start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat()})

    assert "Events per hour (UTC)" in text(response)
    assert response.content.decode().count('class="chart-bucket"') == 48


@pytest.mark.parametrize(
    "query, message",
    [
        ({"range": "custom", "start": "2026-03-10", "end": "2026-03-01"}, "The end date is before the start date."),
        ({"range": "custom", "start": "yesterday", "end": "2026-03-01"}, "Enter a valid date."),
        ({"range": "custom", "start": "2026-03-01"}, "A custom range needs both a start and an end date."),
        ({"range": "custom", "start": "2999-01-01", "end": "2999-01-02"}, "The start date is in the future"),
        ({"range": "custom", "start": "2000-01-01", "end": "2026-01-01"}, "A range can span at most 1100 days."),
        ({"range": "forever"}, "Select a valid choice."),
        ({"range": "custom", "start": "99999-01-01", "end": "2026-01-01"}, "Enter a valid date."),
        ({"range": "custom", "start": "2026-01-01", "end": "9999-12-31"}, "The end date is in the future"),
        ({"range": "custom", "start": "0001-01-01", "end": "0001-01-02"}, "Pick a start date from 1 January 2000 on."),
    ],
)
def test_a_bad_range_is_a_form_message_and_the_default_range_is_shown(client, alice, app, events, query, message):
    client.force_login(alice)

    response = client.get(app_url(app), query)

    assert response.status_code == 200
    page = text(response)
    assert message in page
    assert "Showing last 7 days instead." in page
    assert "Events per day (UTC)" in page


def test_an_app_without_events_explains_how_to_set_up_the_sdk(client, alice, bob, app):
    client.force_login(alice)
    response = client.get(app_url(app))

    assert "No events yet" in text(response)
    assert app_url(app).replace(f"/apps/{app.public_id}/", f"/apps/{app.public_id}/credentials/") in response.content.decode()

    client.force_login(bob)
    response = client.get(app_url(app))
    assert "can set up the SDK from this app's credentials page" in text(response)


def test_an_empty_range_points_to_the_latest_event(client, alice, app, now):
    store(app, sdk_event(now - timedelta(days=40)), now=now)
    client.force_login(alice)

    response = client.get(app_url(app), {"range": "24h"})

    assert "No events in this range" in text(response)
    assert "?range=90d" in response.content.decode()


def test_an_organization_without_apps_offers_to_create_one(client, alice, org):
    client.force_login(alice)

    response = client.get(org_url(org))

    assert "No apps yet" in text(response)
    assert reverse("organizations:app_create", kwargs={"org_id": org.public_id}) in response.content.decode()


def steady_queries(client, urls: list[str]) -> dict[str, int]:
    """Each page's queries once warm: the first view after new data may also fill
    per-process caches (plans) and the daily rollups of days that closed since."""
    for url in urls:
        assert client.get(url).status_code == 200, url
    counts = {}
    for url in urls:
        with capture_queries() as captured:
            assert client.get(url).status_code == 200, url
        counts[url] = len(captured)
    return counts


def test_page_query_counts_do_not_grow_with_apps_or_events(client, alice, org, app, now):
    store(app, sdk_event(now - timedelta(hours=1)), now=now)
    client.force_login(alice)
    app_list = reverse("dashboard:app_list", kwargs={"org_id": org.public_id})
    urls = [org_url(org), app_url(app), app_url(app, "app_events"), app_list]
    one_app = steady_queries(client, urls)

    store(app, *[sdk_event(now - timedelta(hours=h), user=f"u{h}") for h in range(2, 30)], now=now)
    for i in range(6):
        other, _ = make_app(org, name=f"cli-{i}")
        store(other, *[sdk_event(now - timedelta(hours=h), user=f"u{h}") for h in range(1, 30)], now=now)
    seven_apps = steady_queries(client, urls)

    assert seven_apps == one_app


# --- The explorer ------------------------------------------------------------------------------


def test_the_explorer_lists_events_newest_first_with_links_to_each(client, alice, app, events):
    client.force_login(alice)

    response = client.get(app_url(app, "app_events"))

    html = response.content.decode()
    newest = events.order_by("-timestamp").first()
    assert app_url(app, "event_detail", event_id=newest.event_id) in html
    assert event_rows(response) == 4
    assert text(response).index("build") < text(response).index("test")


def test_the_explorer_filters_by_type_user_and_session(client, alice, app, events):
    client.force_login(alice)

    def rows(**query):
        return event_rows(client.get(app_url(app, "app_events"), query))

    assert rows(type="feature_used") == 1
    assert rows(user="client_b") == 2
    assert rows(user="client_b", type="command_execution") == 1
    assert rows(session="s1") == 4
    assert rows(session="nope") == 0


def test_the_explorer_filters_by_time(client, alice, app, events, now):
    client.force_login(alice)
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    response = client.get(app_url(app, "app_events"), {"since": since})

    assert event_rows(response) == 3


@pytest.mark.parametrize(
    "query, message",
    [
        ({"since": "last tuesday"}, "Enter a valid date/time."),
        ({"since": "2026-03-10T10:00", "until": "2026-03-10T09:00"}, "“Until” must be after “Since”."),
        ({"user": "x" * 201}, "Ensure this value has at most 200 characters"),
    ],
)
def test_bad_explorer_filters_are_a_form_message(client, alice, app, events, query, message):
    client.force_login(alice)

    response = client.get(app_url(app, "app_events"), query)

    assert response.status_code == 200
    assert message in text(response)
    assert "Showing every event instead." in text(response)


def test_the_explorer_pages_through_events_keeping_the_filters(client, alice, app, now):
    store(app, *[sdk_event(now - timedelta(minutes=i), user="a" if i % 2 else "b") for i in range(1, 121)], now=now)
    client.force_login(alice)

    first = client.get(app_url(app, "app_events"), {"user": "client_a"})
    older = re.search(r'href="\?([^"]*before=[^"]*)" rel="next"', first.content.decode())[1].replace("&amp;", "&")
    second = client.get(app_url(app, "app_events") + "?" + older)

    assert "user=client_a" in older
    assert event_rows(first) == 50
    assert event_rows(second) == 10
    assert 'rel="next"' not in second.content.decode()
    assert 'rel="prev"' in second.content.decode()


@pytest.mark.parametrize(
    "query", [{"before": "1e99-x"}, {"before": "1-9999999999999999999"}, {"after": "9999999999999999999-1"}]
)
def test_a_broken_page_link_shows_the_newest_events(client, alice, app, events, query):
    client.force_login(alice)

    response = client.get(app_url(app, "app_events"), query)

    assert response.status_code == 200
    assert "That page link is not valid" in text(response)
    assert event_rows(response) == 4


# --- Event detail ----------------------------------------------------------------------------------


def test_the_event_detail_shows_its_fields_and_pretty_json(client, bob, app, events):
    event = events.get(event_type="feature_used")
    client.force_login(bob)

    response = client.get(app_url(app, "event_detail", event_id=event.event_id))

    page = text(response)
    assert str(event.event_id) in page
    assert "client_b" in page
    assert "&quot;feature&quot;: &quot;auth&quot;" in response.content.decode()


def test_the_event_detail_finds_the_event_through_its_key_and_timestamp(client, bob, app, events):
    # The events table has no index on event_id: the lookup must name the event's
    # time (from its EventKey), which the (app, timestamp) index and the partitions serve.
    event = events.get(event_type="feature_used")
    client.force_login(bob)

    with CaptureQueriesContext(events_connection) as queries:
        response = client.get(app_url(app, "event_detail", event_id=event.event_id))

    assert str(event.event_id) in text(response)
    reads = [query["sql"] for query in queries if 'FROM "telemetry_event"' in query["sql"]]
    assert reads and all('"telemetry_event"."timestamp" =' in sql for sql in reads), reads


def test_script_in_event_data_is_shown_escaped(client, alice, app, now):
    store(app, sdk_event(now, data={"command": "<script>alert(1)</script>", "note": "</pre><b>bold</b>"}), now=now)
    event = Event.objects.get(app=app)
    client.force_login(alice)

    for url in (app_url(app, "event_detail", event_id=event.event_id), app_url(app, "app_events")):
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html
