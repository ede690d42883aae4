"""The benchmark scripts measure the real thing: their batches are accepted as
the SDK's are, the seed writes what it says, and every analytics page is timed."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import ingest_load  # noqa: E402
import pages  # noqa: E402
import sdk_events  # noqa: E402
import seed_events  # noqa: E402
from telemetry.models import Event  # noqa: E402

PROTOCOL_SECRET = "kIRV9eC/2+Dvqc4E9ubP9Cjzd0LG2/Dg0OVEfknKBPQ="


def test_the_load_generator_signs_as_the_protocol_test_vector_says():
    signature = sdk_events.sign(PROTOCOL_SECRET, "1732003200", b'{"events":[]}', "550e8400-e29b-41d4-a716-446655440000")

    assert signature == "acb382d7cd11d05778029f528eb2a14ec89cc595b033dd490723c745345a293e"


def test_the_load_generators_events_are_sdk_sized_and_unique():
    factory = sdk_events.BodyFactory(batch_size=100, seed=3)
    first, second = (orjson.loads(factory.body())["events"] for _ in range(2))
    ids = {event["event_id"] for event in first + second}

    assert len(first) == len(second) == 100
    assert len(ids) == 200
    assert 600 <= factory.mean_event_bytes() <= 760  # docs/performance.md: ~680 bytes


def test_the_load_generators_batches_are_accepted_by_the_ingest_endpoint(client, app, secret):
    factory = sdk_events.BodyFactory(batch_size=50, seed=4)
    body = factory.body()
    headers = sdk_events.signed_headers(secret, body, timestamp=int(time.time()), batch_size=50)
    extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items() if name != "Content-Type"}

    response = client.generic(
        "POST", f"/v1/ingest/{app.organization.public_id}/{app.public_id}", body, content_type="application/json", **extra
    )

    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 50
    assert Event.objects.filter(app=app).count() == 50


@pytest.mark.django_db(transaction=True)
def test_the_load_generator_counts_what_a_live_server_accepted(live_server, app, secret):
    result = ingest_load.run_load(
        url=live_server.url,
        org_id=app.organization.public_id,
        app_id=app.public_id,
        secret=secret,
        batch_size=10,
        clients=1,  # the live server's in-memory SQLite refuses concurrent writers outright
        duration=None,
        requests=4,
    )

    assert result["statuses"] == {"200": 4}
    assert result["accepted_events"] == 40 == Event.objects.filter(app=app).count()
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]

    assert ingest_load.percentile(values, 0.5) == 50.0
    assert ingest_load.percentile(values, 0.99) == 99.0
    assert ingest_load.percentile([], 0.5) == 0.0


def test_the_seed_writes_realistic_events_inside_the_window(db):
    end = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)

    result = seed_events.seed_events(events=4000, days=14, end=end, progress=lambda *_: None)

    events = Event.objects.filter(app__organization__name=seed_events.DEMO_ORG)
    assert result["events"] == events.count() == 4000
    assert events.values("app").distinct().count() == len(seed_events.DEMO_APPS)
    assert not events.filter(timestamp__lt=end - timedelta(days=14)).exists()
    assert not events.filter(timestamp__gt=end).exists()
    assert 0.05 < events.filter(ci=True).count() / 4000 < 0.3
    assert 0.65 < events.filter(event_type="command_execution").count() / 4000 < 0.9
    assert events.values("user_id").distinct().count() > 100
    assert events.filter(data__success=False).exists()


def test_the_seed_rebuilds_rollups_to_match_the_raw_events(db):
    from telemetry.models import HourlyRollup

    seed_events.seed_events(events=1500, days=3, progress=lambda *_: None)

    totals = HourlyRollup.objects.filter(app__organization__name=seed_events.DEMO_ORG, dimension="total")
    assert sum(totals.values_list("events", flat=True)) == 1500


def test_the_pages_benchmark_times_every_analytics_page_for_each_preset(org, app, signed_post):
    from tests.factories import make_batch

    assert signed_post(app, make_batch(3)).status_code == 200
    client = pages.viewer_client(org)

    targets = pages.targets(org, extra_paths=[])
    results = [pages.time_page(client, path, repeat=1, warmup=0) for _, _, path in targets]

    names = {page.split()[0] for page, _, _ in targets}
    assert names == {"org_overview", "app_overview", "app_events", "event_detail", "properties"}
    assert {preset for page, preset, _ in targets if page == "org_overview"} == set(pages.presets())
    assert all(result["status"] == [200] for result in results), [r["status"] for r in results]
