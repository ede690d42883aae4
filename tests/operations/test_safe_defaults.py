"""Safe by default: the project's own 404, 403 and 500 pages with DEBUG off, no template
text on them, and permission denials logged as one WARNING line without a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import path

from config import urls as project_urls
from config.urls import handler403, handler500  # noqa: F401 -- this module stands in as the URLconf


def denied(request):
    raise PermissionDenied("Your role in this organization does not allow this.")


def bug(request):
    raise RuntimeError("boom")


# The project's pages too: the error pages link to them.
urlpatterns = [path("denied/", denied), path("bug/", bug), *project_urls.urlpatterns]


@pytest.fixture
def error_urls(settings, client):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    client.raise_request_exception = False
    return client


def visible(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S))


def assert_no_template_text(html: str) -> None:
    text = visible(html)
    for marker in ("{#", "#}", "{%", "%}", "{{", "}}"):
        assert marker not in text, f"template text on the page: {marker}"


def test_a_permission_denial_is_one_warning_without_a_traceback(db, error_urls, json_log):
    response = error_urls.get("/denied/")
    assert response.status_code == 403
    assert b"Not allowed" in response.content
    [line] = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert line["level"] == "WARNING"
    assert line["message"] == "Forbidden (Permission denied): /denied/"
    assert "exc_info" not in line and "Traceback" not in json_log.text


def test_an_error_keeps_its_traceback_and_shows_the_own_500_page(db, error_urls, json_log):
    response = error_urls.get("/bug/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert_no_template_text(html)
    [line] = [line for line in json_log.lines() if line["logger"] == "django.request"]
    assert line["level"] == "ERROR" and "RuntimeError" in line["exc_info"]


def test_the_404_page_is_the_projects_own_and_lists_no_routes(db, settings, client):
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html
    assert "URLconf" not in html and "admin/" not in html
    assert_no_template_text(html)


def test_no_template_has_a_multi_line_short_comment():
    """{# #} spans one line only: a multi-line one is printed as text ({% comment %} is not)."""
    offenders = []
    for template in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        for number, line in enumerate(template.read_text().splitlines(), 1):
            if line.count("{#") != line.count("#}"):
                offenders.append(f"{template.relative_to(settings.BASE_DIR)}:{number}")
    assert offenders == []
