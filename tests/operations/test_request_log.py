"""One JSON line per request, with its id; nothing secret in any log line."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest

from config.logs import JsonFormatter
from tests.factories import make_batch, make_event
from tests.signing import ingest_path, signed_headers


def test_each_request_logs_one_json_line_with_method_path_status_and_duration(client, json_log):
    response = client.get("/live?verbose=1")

    [line] = json_log.requests()
    assert line["method"] == "GET"
    assert line["path"] == "/live"  # never the query string
    assert line["status"] == 200
    assert line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("+00:00")
    assert line["request_id"] == response["X-Request-ID"]


def test_it_keeps_the_callers_request_id(client, json_log):
    response = client.get("/live", HTTP_X_REQUEST_ID="Root=1-67891233-abcdef012345678912345678")

    assert response["X-Request-ID"] == "Root=1-67891233-abcdef012345678912345678"
    assert json_log.requests()[0]["request_id"] == "Root=1-67891233-abcdef012345678912345678"


@pytest.mark.parametrize("incoming", ["two words", "x" * 129, "a\u00e9b", "<script>"])
def test_it_replaces_a_request_id_that_is_not_an_id(client, json_log, incoming):
    response = client.get("/live", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32  # a fresh uuid4, hex
    assert incoming not in json_log.text


def test_every_answer_gets_a_request_id_even_a_404(client, db):
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert response["X-Request-ID"]
    assert response["X-Clacks-Overhead"] == "GNU Terry Pratchett"


def test_an_ingest_line_names_the_app_and_counts_the_batch(signed_post, app, json_log):
    batch = make_batch(3)
    batch["events"].append(make_event(user_id="someone@example.com"))  # rejected: not anonymous
    signed_post(app, batch)
    retry = signed_post(app, batch)

    assert retry.status_code == 207
    first, second = json_log.requests()
    assert first["org"] == app.organization.public_id
    assert first["app"] == app.public_id
    assert (first["batch_size"], first["accepted"], first["rejected"], first["duplicates"]) == (4, 3, 1, 0)
    assert (second["accepted"], second["duplicates"]) == (3, 3)
    assert second["status"] == 207
    assert second["db_queries"] >= 1 and second["db_ms"] >= 0


def test_a_refused_ingest_request_logs_its_error_code(signed_post, app, json_log):
    signed_post(app, make_batch(1), key="not-the-secret")

    [line] = json_log.requests()
    assert line["status"] == 401
    assert line["error"] == "invalid_signature"
    assert "app" not in line  # unauthenticated: only the path names it


def test_no_secret_signature_nonce_token_or_payload_reaches_the_log(client, app, secret, token, json_log):
    body = orjson.dumps(make_batch(1, session_id="sess_payload_marker"))
    headers = signed_headers(secret, body)
    client.post(ingest_path(app), body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)
    client.post(ingest_path(app), body, content_type="application/json", HTTP_AUTHORIZATION="Bearer wrong", **headers)
    client.post("/v1/events/batch", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)

    assert len(json_log.requests()) == 3
    for value in (secret, token, headers["HTTP_X_SIGNATURE"], headers["HTTP_X_NONCE"], "sess_payload_marker"):
        assert value not in json_log.text


def test_records_logged_while_serving_carry_the_request_id(signed_post, app, settings, json_log):
    settings.CLACKS_SHARED_STORE = "redis"  # Redis at an address where nothing listens: a warning, then 503
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }

    response = signed_post(app, make_batch(1))
    logging.getLogger("clacks.test").warning("outside any request")

    assert response.status_code == 503
    warnings = [line for line in json_log.lines() if line["level"] == "WARNING" and line["logger"] != "clacks.request"]
    during, after = warnings[:-1], warnings[-1]
    assert during and all(line["request_id"] == response["X-Request-ID"] for line in during)
    assert after["message"] == "outside any request" and "request_id" not in after
    assert json_log.requests()[0]["level"] == "WARNING"  # a 5xx answer


def test_an_error_with_a_traceback_is_still_one_json_line():
    formatter = JsonFormatter()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("clacks.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())

    text = formatter.format(record)

    assert "\n" not in text
    line = orjson.loads(text)
    assert line["level"] == "ERROR"
    assert "ValueError: boom" in line["exc_info"]


@pytest.mark.django_db
def test_tokens_in_invitation_and_password_reset_links_are_cut_in_the_log(client, json_log):
    invitation = "inv_Zq9x7LmN2pQ4rS6tU8vW0yA1bC3dE5fG"
    reset = "cv1abc-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    client.get(f"/invite/{invitation}/")
    client.get(f"/accounts/password/reset/MQ/{reset}/")

    first, second = json_log.requests()
    assert first["path"] == f"/invite/{invitation[:6]}…/"
    assert second["path"] == f"/accounts/password/reset/MQ/{reset[:6]}…/"
    assert invitation not in json_log.text and reset not in json_log.text
