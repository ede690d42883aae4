"""The Content-Security-Policy (docs/csp.md): on every response, and nothing in the
templates or static files that it would refuse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import path

from config.urls import handler500  # noqa: F401 -- this module stands in as the URLconf in one test

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
}


def bug(request):
    raise RuntimeError("a bug")


urlpatterns = [path("bug/", bug)]


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/setup/", "/orgs/org_nobody/", "/admin/login/"])
def test_every_page_has_the_policy(client, url):
    found = directives(client.get(url))
    for name, value in POLICY.items():
        assert found.get(name) == value, (url, name, found)


@pytest.mark.django_db
def test_a_signed_in_page_and_the_500_page_have_it_too(settings, client, alice, org):
    client.force_login(alice)
    assert directives(client.get(f"/orgs/{org.public_id}/"))["script-src"] == "'self'"
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    response = client.get("/bug/")
    assert response.status_code == 500
    assert directives(response)["style-src"] == "'self'"
    assert b"<style" not in response.content and b"style=" not in response.content


TEMPLATES = Path(settings.BASE_DIR) / "templates"
CODE = [Path(settings.BASE_DIR) / name for name in ("dashboard", "organizations", "telemetry", "alerts")]
INLINE = [
    (re.compile(r"\sstyle\s*=\s*[\"'{]", re.I), "a style attribute"),
    (re.compile(r"<style", re.I), "a <style> element"),
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_or_template_tag_has_inline_script_or_style():
    sources = list(TEMPLATES.rglob("*.html"))
    sources += [p for root in CODE for p in root.rglob("templatetags/*.py")]
    found = []
    for source in sources:
        text = source.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                found.append(f"{source.relative_to(settings.BASE_DIR)}: {what}: {match.group(0)!r}")
    assert found == []
