"""/metrics behind an optional token and allow-list; probes reachable by address over HTTP."""

from __future__ import annotations

import ipaddress

import pytest


def test_metrics_are_open_by_default_in_prometheus_text_format(client, db):
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"# TYPE clacks_ingest_events_accepted_total counter" in response.content
    assert b"# TYPE clacks_ingest_duration_seconds histogram" in response.content


def test_a_metrics_token_is_required_once_set(client, db, settings):
    settings.CLACKS_METRICS_TOKEN = "s3cret-metrics-token"

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-tokeX")
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")

    assert missing.status_code == wrong.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert missing.json()["error"]["code"] == "unauthorized"
    assert right.status_code == 200


def test_the_allow_list_refuses_other_addresses(client, db, settings):
    settings.CLACKS_METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1")]

    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_with_both_set_both_must_pass(client, db, settings):
    settings.CLACKS_METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.0.0.0/8")]
    settings.CLACKS_METRICS_TOKEN = "tok"

    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION="Bearer tok").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1", HTTP_AUTHORIZATION="Bearer tok").status_code == 200


@pytest.mark.parametrize("path", ["/live", "/metrics"])
def test_probes_answer_any_host_over_plain_http(client, db, settings, path):
    # Behind TLS with a strict host list, load balancers and Prometheus still
    # call each instance by address over plain HTTP.
    settings.ALLOWED_HOSTS = ["clacks.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(path, HTTP_HOST="10.1.2.3:8000")

    assert response.status_code == 200
    assert response["X-Clacks-Overhead"] == "GNU Terry Pratchett"


def test_health_and_ready_answer_any_host_too(client, db, settings):
    settings.ALLOWED_HOSTS = ["clacks.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/ready", HTTP_HOST="10.1.2.3:8000").status_code == 200


def test_other_paths_still_check_the_host_and_redirect_to_https(client, db, settings):
    settings.ALLOWED_HOSTS = ["clacks.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    redirect = client.get("/", HTTP_HOST="clacks.example.com")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://clacks.example.com/"


def test_health_reports_uptime_latency_and_connection_settings(client, db, settings):
    body = client.get("/health").json()

    database = body["checks"]["database"]
    assert body["uptime_seconds"] >= 0
    assert database["latency_ms"] >= 0
    assert database["connection"] == {
        "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
        "conn_health_checks": True,
        "connect_timeout_s": settings.DATABASES["default"]["OPTIONS"].get("connect_timeout"),
        "statement_timeout_ms": settings.CLACKS_DB_STATEMENT_TIMEOUT_MS or None,
    }
