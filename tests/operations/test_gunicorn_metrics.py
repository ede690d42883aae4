"""Under gunicorn with 4 workers that restart, /metrics counts what was sent and the log shows each request."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import orjson

from tests.factories import make_batch, make_event
from tests.operations import servers
from tests.operations.servers import sample


def test_counts_add_up_across_four_restarting_workers(gunicorn, served_database):
    # 4 workers x 15 requests < 64 requests: at least one worker is replaced mid-run.
    server = gunicorn(workers=4, GUNICORN_MAX_REQUESTS="15", GUNICORN_MAX_REQUESTS_JITTER="0")
    app = servers.create_app(server.env, name="four-workers")
    originals = [orjson.dumps(make_batch(5)) for _ in range(40)]
    partial = []
    for _ in range(6):
        batch = make_batch(3)
        batch["events"].append(make_event(user_id="someone@example.com"))
        partial.append(orjson.dumps(batch))
    stranger = servers.IssuedApp(app.org_id, "app_0000dead", app.secret, "")

    def send(job):
        target, body, secret = job
        return servers.signed_post(server.port, target, body, secret=secret).status

    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(send, [(app, body, None) for body in originals + partial]
                              + [(app, originals[0], "not-the-secret")] * 5 + [(stranger, originals[1], None)] * 3))
        retries = list(pool.map(send, [(app, body, None) for body in originals[:10]]))

    assert sorted(first) == [200] * 40 + [207] * 6 + [401] * 8
    assert retries == [200] * 10
    metrics = servers.scrape(server.port)
    assert sample(metrics, "clacks_ingest_events_accepted_total") == 40 * 5 + 10 * 5 + 6 * 3
    assert sample(metrics, "clacks_ingest_events_duplicate_total") == 10 * 5
    assert sample(metrics, "clacks_ingest_events_rejected_total", reason="invalid_schema") == 6
    assert sample(metrics, "clacks_ingest_batches_total", status="200") == 50
    assert sample(metrics, "clacks_ingest_batches_total", status="207") == 6
    assert sample(metrics, "clacks_ingest_batches_total", status="401") == 8
    assert sample(metrics, "clacks_ingest_auth_failures_total", reason="invalid_signature") == 8
    assert sample(metrics, "clacks_ingest_batch_size_events_count") == 56
    assert sample(metrics, "clacks_ingest_batch_size_events_sum") == 50 * 5 + 6 * 4
    assert sample(metrics, "clacks_ingest_duration_seconds_count") == 64
    # django-prometheus' own counters are summed across workers too.
    assert sample(metrics, "django_http_requests_total_by_method_total", method="POST") == 64
    assert servers.count_events(served_database, app.app_id) == (40 * 5 + 6 * 3, 40 * 5 + 6 * 3)

    # Replaced workers' files were folded into one archive: the directory does not
    # grow with each recycled worker, and the sums above include them.
    deadline = time.monotonic() + 10
    while len(list(server.metrics_dir.glob("counter_*.db"))) > 4 + 1 and time.monotonic() < deadline:
        time.sleep(0.1)  # the last recycled worker may still be exiting
    assert (server.metrics_dir / "counter_archive.db").exists()
    assert len(list(server.metrics_dir.glob("counter_*.db"))) <= 4 + 1

    server.stop()
    lines = server.log_lines()  # every line is JSON, gunicorn's own included
    assert len([line for line in lines if "Booting worker" in line.get("message", "")]) > 4
    requests = [line for line in lines if line["logger"] == "clacks.request" and line["method"] == "POST"]
    assert len(requests) == 64
    assert len({line["request_id"] for line in requests}) == 64
    stored = [line for line in requests if line["status"] == 200 and line.get("duplicates") == 0]
    assert len(stored) == 40 and all(line["app"] == app.app_id and line["batch_size"] == 5 for line in stored)
    text = server.log_path.read_text()
    assert app.secret not in text and app.token not in text


def test_per_app_labels_only_when_asked_and_only_for_known_apps(gunicorn):
    server = gunicorn(workers=1, CLACKS_METRICS_PER_APP="True")
    app = servers.create_app(server.env, name="labelled")
    stranger = servers.IssuedApp(app.org_id, "app_00000bad", app.secret, "")

    assert servers.signed_post(server.port, app, orjson.dumps(make_batch(2))).status == 200
    assert servers.signed_post(server.port, stranger, orjson.dumps(make_batch(2))).status == 401

    metrics = servers.scrape(server.port)
    assert sample(metrics, "clacks_ingest_events_accepted_total", app=app.app_id) == 2
    labelled = {dict(labels).get("app") for (name, labels) in metrics if name.startswith("clacks_ingest_events")}
    assert labelled == {app.app_id}


def test_metrics_token_protects_the_served_endpoint(gunicorn):
    server = gunicorn(workers=1, CLACKS_METRICS_TOKEN="scrape-me", ALLOWED_HOSTS="clacks.example.com")

    assert servers.request(server.port, "GET", "/metrics").status == 401
    assert servers.scrape(server.port, headers={"Authorization": "Bearer scrape-me"})
