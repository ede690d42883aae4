"""Every figure the API returns equals the dashboard's for the same query.

Each test asks a dashboard page and the matching endpoint the same query
string and compares the page's figures (its template context) with the API's
answer, field by field, across ranges and filters."""

from __future__ import annotations

import pytest

from api.shapes import to_json
from dashboard.charts import bucket_label
from tests.api.conftest import seed

QUERIES = [
    "",
    "range=24h",
    "range=30d",
    "range=90d&os=linux",
    "range=30d&version=1.2.0&ci=false",
    "range=7d&arch=aarch64",
]


@pytest.fixture
def both(client, alice, make_key, api, app, org):
    """both(page_path, api_path, query) -> (page context, API JSON)."""
    seed(app)
    token = make_key()
    client.force_login(alice)

    def get(page: str, endpoint: str, query: str = ""):
        page_response = client.get(f"{page}?{query}")
        assert page_response.status_code == 200
        api_response = api("GET", f"{endpoint}?{query}", token)
        assert api_response.status_code == 200, api_response.content
        return page_response.context, api_response.json()

    return get


def _paths(org, app, page: str, endpoint: str):
    base = f"/orgs/{org.public_id}/apps/{app.public_id}/"
    return base + page, "/api/v1" + base + endpoint


@pytest.mark.parametrize("query", QUERIES)
def test_the_app_overview_and_the_api_agree(both, org, app, query):
    page, endpoint = _paths(org, app, "", "summary/")
    context, summary = both(page, endpoint, query)
    assert summary["summary"] == to_json(context["summary"])
    assert summary["summary"]["events"]["current"] > 0 or "range=24h" in query or "arch" in query

    _, series = both(page, endpoint.replace("summary/", "timeseries/"), query)
    assert [b["count"] for b in series["buckets"]] == [bar.count for bar in context["chart"].bars]
    hourly = series["range"]["bucket"] == "hour"
    from datetime import datetime

    labels = [bucket_label(datetime.fromisoformat(b["start"]), hourly=hourly) for b in series["buckets"]]
    assert labels == [bar.label for bar in context["chart"].bars]

    if context["summary"].events.current:
        _, found = both(page, endpoint.replace("summary/", "breakdowns/"), query)
        assert found["breakdowns"] == to_json(context["breakdowns"])
        _, commands = both(page, endpoint.replace("summary/", "commands/"), query)
        assert commands["commands"] == to_json(context["commands"])
        assert commands["top"] == to_json(context.get("top_commands", []))


@pytest.mark.parametrize("query", ["", "range=30d&os=macos"])
def test_the_organization_overview_and_the_api_agree(both, org, app, query):
    endpoint = f"/api/v1/orgs/{org.public_id}/"
    context, summary = both(f"/orgs/{org.public_id}/", endpoint + "summary/", query)
    assert summary["summary"] == to_json(context["summary"])
    assert summary["apps"] == to_json(context["activity"])
    assert summary["apps"][0]["app_id"] == app.public_id
    _, found = both(f"/orgs/{org.public_id}/", endpoint + "breakdowns/", query)
    assert found["breakdowns"] == to_json(context["breakdowns"])
    _, commands = both(f"/orgs/{org.public_id}/", endpoint + "commands/", query)
    assert commands["commands"] == to_json(context["commands"])
    assert commands["top"] == to_json(context["top_commands"])


@pytest.mark.parametrize("query", ["range=30d", "range=90d&version=1.1.0", "range=7d&os=linux&behind=1"])
def test_releases_agree(both, org, app, query):
    context, found = both(*_paths(org, app, "releases/", "releases/"), query)
    assert found["has_events"] is True
    assert found["users"] == to_json(context["users"])
    assert found["versions"] == to_json(context["table"])
    assert found["rollout"] == to_json(context["rollout"])
    assert found["old"] == to_json(context["old"])
    assert found["versions"]["rows"]


@pytest.mark.parametrize("query", ["range=30d", "range=90d&ci=true"])
def test_release_health_and_a_commands_page_agree(both, org, app, query):
    context, found = both(*_paths(org, app, "health/", "health/"), query)
    assert found["health"] == to_json(context["report"])
    assert found["health"]["versions"]
    context, found = both(*_paths(org, app, "commands/build/", "health/command/"), query + "&command=build")
    assert found["command"] == "build"
    assert found["detail"] == to_json(context["detail"])
    assert found["detail"]["outcomes"]["runs"] > 0


@pytest.mark.parametrize("query", ["", "range=30d", "range=90d&os=windows", "range=24h"])
def test_retention_agrees(both, org, app, query):
    context, found = both(*_paths(org, app, "retention/", "retention/"), query)
    assert found["retention"] == to_json(context["figures"])
    assert found["retention"]["days"]


@pytest.mark.parametrize("query", ["range=30d", "range=7d&ci=false"])
def test_platforms_agree(both, org, app, query):
    # The page lists 15 platforms unless asked for all; the API always gives all.
    context, found = both(*_paths(org, app, "platforms/", "platforms/"), query + "&all=1")
    assert found["platforms"] == to_json(context["platforms"])
    assert found["platforms"]["rows"]


@pytest.mark.parametrize(
    "query",
    ["range=30d", "range=30d&type=command_execution&key=duration_ms", "range=30d&type=command_execution&key=duration_ms&split=command",
     "range=7d&type=command_execution&key=command", "range=90d&type=feature_used&key=level&os=linux"],
)  # fmt: skip
def test_properties_agree(both, org, app, query):
    context, found = both(*_paths(org, app, "properties/", "properties/"), query)
    assert found["properties"] == to_json(context["report"])
    assert found["properties"]["types"]


@pytest.mark.parametrize("query", ["range=30d", "range=90d&os=linux"])
def test_funnels_agree(both, org, app, funnel, query):
    context, found = both(*_paths(org, app, f"funnels/{funnel.pk}/", f"funnels/{funnel.pk}/"), query)
    assert found["result"] == to_json(context["result"])
    assert found["result"]["entered"] > 0


@pytest.mark.parametrize("query", ["", "type=feature_used", "range=7d&os=linux", "user=client_u3"])
def test_the_event_list_agrees_with_the_explorer(both, org, app, query):
    context, found = both(*_paths(org, app, "events/", "events/"), query + "&limit=50")
    assert [e["event_id"] for e in found["events"]] == [str(e.event_id) for e in context["page"].events]
    assert found["events"], "the query should find events"


@pytest.mark.parametrize("endpoint", ["summary/", "timeseries/", "breakdowns/", "commands/", "apps/", ""])
def test_an_organization_without_apps_answers_with_zeros(api, charlie, endpoint):
    from api import keys
    from tests.factories import make_org

    empty = make_org(name="Empty", owner=charlie)
    token = keys.create_key(empty, name="k", scopes=["read"], by=charlie).token
    response = api("GET", f"/api/v1/orgs/{empty.public_id}/{endpoint}?range=30d", token)
    assert response.status_code == 200
    body = response.json()
    if endpoint == "summary/":
        assert body["summary"]["events"]["current"] == 0 and body["apps"] == [] and body["has_events"] is False
    if endpoint == "apps/":
        assert body == {"apps": []}
