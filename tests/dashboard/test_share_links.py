"""Share links: admins create, list and revoke them; anonymous visitors read only what was shared."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import shares
from dashboard.models import ShareLink
from organizations.models import AuditEntry, Role
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_app, make_member, make_user


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def events(app, now):
    store(
        app,
        sdk_event(now - timedelta(hours=1), user="a", data={"command": "build", "success": True, "duration_ms": 120}),
        sdk_event(now - timedelta(hours=2), user="b", os="macos", version="1.3.0", data={"command": "test", "success": False}),
        sdk_event(now - timedelta(days=3), user="c", type="feature_used", category="library", data={"feature": "auth"}),
        now=now,
    )


def links_url(app) -> str:
    return reverse("dashboard:share_links", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id})


def page_url(token: str) -> str:
    return reverse("dashboard:shared_page", kwargs={"token": token})


def badge_url(token: str, kind: str) -> str:
    return reverse("dashboard:shared_badge", kwargs={"token": token, "kind": kind})


def issue(app, *, sections=("overview",), password="", expires_at=None, by=None) -> str:
    return shares.create_share_link(
        app, sections=list(sections), password=password, expires_at=expires_at, by=by, now=timezone.now()
    ).token


ALL_SECTIONS = ["overview", "breakdowns", "commands", "releases", "platforms", "badges"]


# --- Creating, listing, revoking ---------------------------------------------------------------


def test_an_admin_creates_a_link_that_is_shown_once_and_audited(client, alice, app, events):
    client.force_login(alice)
    response = client.post(links_url(app), {"sections": ["overview", "badges"], "label": "for the README"}, follow=True)

    assert response.redirect_chain == [(links_url(app), 302)]
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    token = re.search(r"/s/([A-Za-z0-9_-]+)/</code>", page).group(1)
    link = ShareLink.objects.get(app=app)
    assert link.token_hash != token and len(link.token_hash) == 64  # only the hash is stored
    assert link.sections == ["overview", "badges"]
    assert f"/s/{token}/badge/users.svg" in page
    entry = AuditEntry.objects.get(organization=app.organization, action="share.create")
    assert entry.actor == alice and entry.target == app.public_id
    assert entry.details["sections"] == ["overview", "badges"] and entry.details["password"] is False

    listing = client.get(links_url(app)).content.decode()
    assert "for the README" in listing and link.token_prefix in listing
    assert token not in listing  # never shown again


def test_viewers_cannot_manage_share_links_and_outsiders_see_nothing(client, bob, charlie, app):
    client.force_login(bob)
    assert client.get(links_url(app)).status_code == 403
    assert client.post(links_url(app), {"sections": ["overview"]}).status_code == 403
    client.force_login(charlie)
    assert client.get(links_url(app)).status_code == 404
    assert not ShareLink.objects.exists()


def test_the_form_explains_what_is_wrong(client, alice, app):
    client.force_login(alice)
    nothing = client.post(links_url(app), {"sections": []})
    badges_with_password = client.post(links_url(app), {"sections": ["badges"], "password": "long enough pw"})

    assert nothing.status_code == badges_with_password.status_code == 400
    assert "Choose at least one section to share." in nothing.content.decode()
    assert "cannot send a password" in badges_with_password.content.decode()
    assert not ShareLink.objects.exists()


def test_a_revoked_link_answers_404_and_the_revocation_is_audited(client, alice, app, events):
    token = issue(app, sections=["overview", "badges"])
    assert Client().get(page_url(token)).status_code == 200
    assert Client().get(badge_url(token, "users")).status_code == 200
    link = ShareLink.objects.get()

    client.force_login(alice)
    response = client.post(reverse("dashboard:share_link_revoke", kwargs={"org_id": app.organization.public_id, "app_id": app.public_id}), {"link": link.pk})

    assert response.status_code == 302
    gone = Client().get(page_url(token))
    assert gone.status_code == 404
    assert gone["X-Robots-Tag"] == "noindex, nofollow, noarchive"
    assert Client().get(badge_url(token, "users")).status_code == 404  # not from the badge cache
    assert AuditEntry.objects.filter(action="share.revoke", target=app.public_id, actor=alice).count() == 1


def test_an_expired_link_answers_404(app, events):
    token = issue(app, expires_at=timezone.now() + timedelta(days=1))
    assert Client().get(page_url(token)).status_code == 200
    ShareLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert Client().get(page_url(token)).status_code == 404
    assert Client().get(page_url("not-a-token")).status_code == 404


def test_a_disabled_app_has_no_shared_page(app, events):
    token = issue(app)
    app.is_active = False
    app.save()
    assert Client().get(page_url(token)).status_code == 404


# --- What the shared page shows ------------------------------------------------------------------


def test_the_shared_page_shows_the_chosen_sections_with_the_dashboards_figures(app, events):
    token = issue(app, sections=["overview", "releases"])
    response = Client().get(page_url(token) + "?range=7d")

    assert response.status_code == 200
    assert response["X-Robots-Tag"] == "noindex, nofollow, noarchive"
    assert response["Referrer-Policy"] == "same-origin"
    page = response.content.decode()
    assert '<meta name="robots" content="noindex, nofollow, noarchive">' in page
    assert "<h1>my-cli</h1>" in page
    assert re.search(r'<h2 class="stat-label">Events</h2>\s*<p class="stat-value">\s*3</p>', page)
    assert re.search(r'<h2 class="stat-label">Users</h2>\s*<p class="stat-value">\s*3</p>', page)
    assert "<code>1.3.0</code>" in page and "<code>1.2.0</code>" in page  # the versions table
    assert "Breakdowns" not in page and "Platforms" not in page and "commands-heading" not in page
    assert " style=" not in page and "<script" not in page  # ready for a strict CSP


def test_a_section_alone_shows_only_itself(app, events):
    page = Client().get(page_url(issue(app, sections=["platforms"]))).content.decode()
    assert ">Platforms</h2>" in page
    assert "stat-label" not in page and "Breakdowns" not in page and "Versions" not in page and "<svg" not in page


def test_every_section_renders(app, events):
    page = Client().get(page_url(issue(app, sections=ALL_SECTIONS))).content.decode()
    for heading in ("Breakdowns", "Commands", "Versions", "Platforms", "Badges"):
        assert f">{heading}</h2>" in page
    assert " style=" not in page and "<script" not in page


def test_crawling_a_shared_page_finds_nothing_of_the_organization_beyond_what_was_shared(alice, bob, org, app, events):
    other, _ = make_app(org, name="secret-other-app")
    store(other, sdk_event(timezone.now() - timedelta(hours=1), user="z"), now=timezone.now())
    carol = make_user("carol")
    make_member(org, carol, role=Role.ADMIN)
    token = issue(app, sections=ALL_SECTIONS, by=alice)
    forbidden = [
        org.public_id, org.name, app.public_id, other.public_id, other.name,
        "alice@example.com", "bob@example.com", "carol@example.com", "alice", "carol",
        str(app.pk) + "/", "/orgs/",
    ]  # fmt: skip

    visitor = Client()
    start = page_url(token)
    seen, queue, fetched = set(), [start], 0
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = visitor.get(url)
        fetched += 1
        assert response.status_code in (200, 404), url  # 404: static files, which tests do not serve
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode(errors="replace")
        for secret in forbidden:
            assert secret not in text, f"{secret!r} on {url}"
            assert secret not in str(response.headers), f"{secret!r} in the headers of {url}"
        if url.startswith(start) and response.status_code == 200 and "html" in response["Content-Type"]:
            for link in re.findall(r'(?:href|src|action)="([^"]*)"', text):
                target = urljoin(url, link.replace("&amp;", "&"))
                parts = urlsplit(target)
                assert parts.netloc in ("", "testserver"), target  # nothing points elsewhere
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert fetched >= 8  # the page, its three ranges, four badges, the stylesheets


def test_a_password_protects_the_page_and_a_wrong_one_gets_a_readable_message(app, events):
    token = issue(app, password="open sesame 42")
    link = ShareLink.objects.get()
    assert link.password_hash != "open sesame 42" and check_password("open sesame 42", link.password_hash)
    visitor = Client(enforce_csrf_checks=True)

    asked = visitor.get(page_url(token))
    assert asked.status_code == 200 and 'type="password"' in asked.content.decode()
    assert "Events" not in asked.content.decode()
    csrf = visitor.cookies["csrftoken"].value
    wrong = visitor.post(page_url(token), {"password": "guess", "csrfmiddlewaretoken": csrf})
    assert wrong.status_code == 403
    assert "That password is not right." in wrong.content.decode()
    assert wrong["X-Robots-Tag"] == "noindex, nofollow, noarchive"

    right = visitor.post(page_url(token), {"password": "open sesame 42", "csrfmiddlewaretoken": csrf})
    assert right.status_code == 302
    assert visitor.get(page_url(token)).status_code == 200
    assert "stat-value" in visitor.get(page_url(token)).content.decode()
    assert "stat-value" not in Client().get(page_url(token)).content.decode()  # another browser is asked


def test_shared_pages_are_rate_limited_per_client(app, events, settings):
    settings.CLACKS_SHARE_REQUESTS_PER_MINUTE = 3
    token = issue(app)
    visitor = Client()
    assert [visitor.get(page_url(token)).status_code for _ in range(3)] == [200, 200, 200]
    refused = visitor.get(page_url(token))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-Robots-Tag"] == "noindex, nofollow, noarchive"
    assert Client(REMOTE_ADDR="127.0.0.2").get(page_url(token)).status_code == 200


# --- Badges --------------------------------------------------------------------------------------


def test_a_badge_is_an_svg_with_cache_headers_and_an_etag(app, events, settings):
    settings.CLACKS_BADGE_CACHE_SECONDS = 600
    token = issue(app, sections=["badges"])
    response = Client().get(badge_url(token, "users"))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=600"
    assert response["X-Robots-Tag"] == "noindex, nofollow, noarchive"
    svg = response.content.decode()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert ">users (30 days)</text>" in svg and ">3</text>" in svg
    etag = response["ETag"]

    again = Client().get(badge_url(token, "users"), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag


def test_badges_are_cached_on_the_server(app, events, now):
    token = issue(app, sections=["badges"])
    first = Client().get(badge_url(token, "events")).content
    store(app, sdk_event(now - timedelta(minutes=5), user="d"), now=now)
    assert Client().get(badge_url(token, "events")).content == first  # the cached figure
    shares.forget_badges(ShareLink.objects.get())
    assert ">4</text>" in Client().get(badge_url(token, "events")).content.decode()


def test_version_badges_escape_what_the_sdk_sent(app, now):
    store(app, sdk_event(now - timedelta(hours=1), user="a", version='9.9.9-"<b>&amp'), now=now)
    token = issue(app, sections=["badges"])

    version = Client().get(badge_url(token, "version")).content.decode()
    adoption = Client().get(badge_url(token, "adoption")).content.decode()

    assert "<b>" not in version and "&lt;b&gt;" in version and "&amp;amp" in version
    assert "100%" in adoption and "<b>" not in adoption


def test_badges_need_the_badges_section_and_a_known_kind(app, events):
    without = issue(app, sections=["overview"])
    with_badges = issue(app, sections=["badges"])
    assert Client().get(badge_url(without, "users")).status_code == 404
    assert Client().get(badge_url(with_badges, "members")).status_code == 404


def test_badge_text_is_escaped():
    svg = shares.badge_svg('<a href="x">', "&'", color="#000")
    assert "<a " not in svg and "&lt;a href=&quot;x&quot;&gt;" in svg and "&amp;&#x27;" in svg


def test_the_request_log_keeps_only_the_start_of_a_token(app, caplog):
    token = issue(app)
    with caplog.at_level("INFO", logger="clacks.request"):
        Client().get(page_url(token))
        Client().get(badge_url(token, "users"))
    lines = [record for record in caplog.records if record.name == "clacks.request"]
    assert len(lines) == 2
    for record in lines:
        assert token not in record.getMessage() and token not in record.path
        assert record.path.startswith(f"/s/{token[:6]}…")
