"""Error pages: a friendly 503 while the database is away, 500.html otherwise, and the
traceback of an unhandled error logged once, as one JSON line."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.urls import path

from config.urls import handler500  # noqa: F401 -- this module stands in as the URLconf


def database_gone(request):
    raise OperationalError("connection to server at 127.0.0.1 failed")


def bug(request):
    raise RuntimeError("a bug with a secret-looking message")


urlpatterns = [path("gone/", database_gone), path("bug/", bug)]


@pytest.fixture
def error_urls(settings, client):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    return client


def test_a_page_that_loses_the_database_shows_the_friendly_503(error_urls, json_log):
    response = error_urls.get("/gone/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert b"Back in a moment" in response.content
    assert not [line for line in json_log.lines() if "exc_info" in line]
    assert [line["message"] for line in json_log.lines() if line["level"] == "WARNING"] == [
        "database unavailable: OperationalError",
        "GET /gone/ 503",
    ]


def test_an_unhandled_error_shows_500_html_and_logs_its_traceback_once(error_urls, json_log):
    response = error_urls.get("/bug/")

    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    [traceback] = [line for line in json_log.lines() if "exc_info" in line]
    assert traceback["logger"] == "django.request"
    assert "RuntimeError" in traceback["exc_info"]
    assert traceback["request_id"] == response["X-Request-ID"]


def test_a_slow_query_is_logged_with_its_duration_but_not_its_parameters(db, settings, json_log):
    settings.CLACKS_SLOW_QUERY_MS = 1
    slow = (
        "SELECT pg_sleep(0.02), %s"
        if connection.vendor == "postgresql"
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT count(*), %s FROM n"
    )
    with connection.cursor() as cursor:
        cursor.execute(slow, ["parameter-marker"])

    [line] = [line for line in json_log.lines() if line["logger"] == "clacks.db"]
    assert line["level"] == "WARNING"
    assert line["duration_ms"] >= 1
    assert line["sql"].startswith(slow.split("%s")[0].strip()[:20])
    assert "parameter-marker" not in json_log.text


def test_queries_under_the_threshold_are_not_logged(db, settings, json_log):
    settings.CLACKS_SLOW_QUERY_MS = 10_000
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")

    assert not [line for line in json_log.lines() if line["logger"] == "clacks.db"]
