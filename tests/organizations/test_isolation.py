"""Tenant isolation: every page and action of the organizations and dashboard namespaces,
found through the URL resolver so that a new page is covered without editing this file
(except to say which role it needs, which the test insists on)."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from alerts import services as alert_services
from alerts.models import ChannelKind, RuleKind
from dashboard import funnels, shares
from dashboard.funnels import Step
from organizations import services
from organizations.models import Membership, Role, SsoDomain
from tests.factories import make_app, make_org
from tests.organizations.conftest import store_events

NAMESPACES = ("organizations", "dashboard", "alerts")

# Pages that belong to no organization: reachable by any signed-in user (or anyone).
NOT_ORG_SCOPED = {
    "organizations:setup",
    "organizations:login",
    "organizations:logout",
    "organizations:password_change",
    "organizations:password_reset",
    "organizations:password_reset_sent",
    "organizations:password_reset_confirm",
    "organizations:password_reset_complete",
    "organizations:two_factor",
    "organizations:two_factor_start",
    "organizations:two_factor_qr",
    "organizations:two_factor_confirm",
    "organizations:two_factor_recovery_codes",
    "organizations:two_factor_disable",
    "organizations:two_factor_verify",
    "organizations:sessions",
    "organizations:session_end_others",
    "organizations:session_end",
    "organizations:org_list",
    "organizations:invite_accept",
    "organizations:oidc_login",  # single sign-on's start and callback (tests/organizations/test_sso_sign_in.py)
    "organizations:oidc_callback",
    "organizations:profile",  # the signed-in person's own settings
    "dashboard:home",
    "dashboard:background_jobs",  # staff and superusers only, whatever their organizations
    "dashboard:shared_page",  # anyone with a share link's token (tests/dashboard/test_share_links.py)
    "dashboard:shared_badge",
}

# The lowest role each organization page or action needs. A URL missing here fails
# the test: decide who may use a new page when adding it.
MIN_ROLE = {
    "dashboard:org_settings": Role.OWNER,
    "dashboard:org_retention": Role.OWNER,
    "organizations:members": Role.VIEWER,
    "organizations:member_invite": Role.OWNER,
    "organizations:invitation_revoke": Role.OWNER,
    "organizations:member_role": Role.OWNER,
    "organizations:member_remove": Role.OWNER,
    "organizations:member_unlock": Role.OWNER,
    "organizations:member_reset_link": Role.OWNER,
    "organizations:require_two_factor": Role.OWNER,
    "organizations:audit": Role.ADMIN,
    "organizations:sso_domains": Role.OWNER,
    "organizations:sso_domain_remove": Role.OWNER,
    "dashboard:app_list": Role.VIEWER,
    "organizations:app_create": Role.ADMIN,
    "dashboard:app_credentials": Role.ADMIN,
    "dashboard:credential_reveal": Role.ADMIN,
    "dashboard:credentials_rotate": Role.ADMIN,
    "dashboard:credential_revoke": Role.ADMIN,
    "dashboard:app_settings": Role.ADMIN,
    "dashboard:app_state": Role.ADMIN,
    "dashboard:checklist_dismiss": Role.ADMIN,
    "dashboard:org_state": Role.OWNER,
    "dashboard:app_retention": Role.ADMIN,
    "dashboard:app_delete": Role.ADMIN,
    "dashboard:org_overview": Role.VIEWER,
    "dashboard:app_overview": Role.VIEWER,
    "dashboard:app_events": Role.VIEWER,
    "dashboard:app_live": Role.VIEWER,
    "dashboard:event_detail": Role.VIEWER,
    "dashboard:retention": Role.VIEWER,
    "dashboard:platforms": Role.VIEWER,
    "dashboard:releases": Role.VIEWER,
    "dashboard:funnels": Role.VIEWER,
    "dashboard:funnel_detail": Role.VIEWER,
    "dashboard:funnel_new": Role.ADMIN,
    "dashboard:funnel_edit": Role.ADMIN,
    "dashboard:funnel_delete": Role.ADMIN,
    "dashboard:release_health": Role.VIEWER,
    "dashboard:command_detail": Role.VIEWER,
    "dashboard:properties": Role.VIEWER,
    "dashboard:export_events": Role.ADMIN,
    "dashboard:erase_user": Role.ADMIN,
    "dashboard:share_links": Role.ADMIN,
    "dashboard:share_link_revoke": Role.ADMIN,
    "alerts:rules": Role.VIEWER,
    "alerts:history": Role.VIEWER,
    "alerts:rule_new": Role.ADMIN,
    "alerts:rule_edit": Role.ADMIN,
    "alerts:rule_delete": Role.ADMIN,
    "alerts:channels": Role.ADMIN,
    "alerts:channel_new": Role.ADMIN,
    "alerts:channel_detail": Role.ADMIN,
    "alerts:channel_test": Role.ADMIN,
    "alerts:channel_enable": Role.ADMIN,
    "alerts:channel_delete": Role.ADMIN,
    "alerts:digest": Role.VIEWER,
}


# Parts of a page fetched by its script, with no heading of their own: what they hold instead.
FRAGMENTS = {"dashboard:app_live": 'class="live-figures"'}

# What each page that answers GET shows as its heading to someone allowed to see it.
HEADINGS = {
    "organizations:members": "Members",
    "organizations:audit": "Audit log",
    "organizations:sso_domains": "Single sign-on",
    "organizations:app_create": "New app",
    "dashboard:org_overview": "Alice Org",
    "dashboard:org_settings": "Organization settings",
    "dashboard:erase_user": "Erase a user's events",
    "dashboard:app_list": "Apps",
    "dashboard:app_overview": "my-cli",
    "dashboard:app_events": "Recent events",
    "dashboard:event_detail": "command_execution event",
    "dashboard:retention": "Retention",
    "dashboard:platforms": "Platforms",
    "dashboard:releases": "Releases",
    "dashboard:funnels": "Funnels",
    "dashboard:funnel_detail": "Onboarding",
    "dashboard:funnel_new": "New funnel",
    "dashboard:funnel_edit": "Edit funnel",
    "dashboard:funnel_delete": "Delete funnel",
    "dashboard:release_health": "Release health",
    "dashboard:command_detail": "Command build",
    "dashboard:properties": "Properties",
    "dashboard:export_events": "Export events",
    "dashboard:app_credentials": "Credentials and setup",
    "dashboard:app_settings": "App settings",
    "dashboard:share_links": "Share links",
    "alerts:rules": "Alerts",
    "alerts:history": "Alert history",
    "alerts:rule_new": "New alert rule",
    "alerts:rule_edit": "Edit alert rule",
    "alerts:channels": "Notification channels",
    "alerts:channel_new": "New channel",
    "alerts:channel_detail": "Channel hooks",
    "alerts:digest": "Weekly digest",
}

# Every action that answers only POST: a form that succeeds for a member whose role
# allows it ({names} come from the world fixture), and what the page shown next says.
POST_ONLY = {
    "dashboard:org_retention": ({"choice": "30"}, "Events are now kept for 30 days by default."),
    "organizations:member_invite": ({"role": "viewer", "valid_days": "7"}, "Invitation created."),
    "organizations:invitation_revoke": ({}, "Invitation revoked; its link no longer works."),
    "organizations:member_role": ({"m{member_id}-role": "admin"}, "bob is now admin."),
    "organizations:member_remove": ({}, "bob is removed from Alice Org."),
    "organizations:sso_domain_remove": ({}, "@acme.example no longer joins anyone"),
    "organizations:member_unlock": ({}, "bob can sign in again."),
    "organizations:member_reset_link": ({}, "Password-reset link for bob created."),
    "organizations:require_two_factor": ({"require_two_factor": "on"}, "Two-factor sign-in is required"),
    "dashboard:credential_reveal": ({"credential": "{credential_id}"}, "Copy secret"),
    "dashboard:credentials_rotate": ({}, "New credentials issued."),
    "dashboard:app_retention": ({"choice": "7"}, "my-cli now keeps events for 7 days (this app's own setting)."),
    "dashboard:share_link_revoke": ({"link": "{share_link_id}"}, "is revoked; it answers 404 from now on."),
    "alerts:rule_delete": ({}, "Alert rule “stopped” deleted; its history is kept."),
    "dashboard:checklist_dismiss": ({}, "The setup checklist is hidden."),
    "alerts:channel_test": ({}, "Test notification stored"),
    "alerts:channel_enable": ({}, "Channel “hooks” is enabled again"),
    "alerts:channel_delete": ({}, "Channel “hooks” deleted with its pending notifications."),
}


# Dangerous actions: a GET shows their own confirmation page (its heading here, reached
# with the query string), and a POST of the form does them. Also in POST_ONLY's shape.
CONFIRMED = {
    "dashboard:credential_revoke": (
        "?credential={credential_id}", "Revoke credentials {token_prefix}…?",
        {"credential": "{credential_id}", "confirmed": "yes"}, "are revoked; clients using them get 401 now.",
    ),
    "dashboard:app_state": ("", "Disable my-cli?", {"is_active": ""}, "my-cli is disabled; ingest answers 403 to its clients."),
    "dashboard:app_delete": ("", "Delete my-cli?", {"confirm": "my-cli"}, "my-cli and its 1 events are deleted."),
    "dashboard:org_state": ("", "Disable Alice Org?", {"is_active": ""}, "Alice Org is disabled: ingest for its apps now answers 403."),
}  # fmt: skip
POST_ONLY.update({name: (data, says) for name, (_, _, data, says) in CONFIRMED.items()})


def named_patterns() -> list[tuple[str, list[str]]]:
    """(namespace:name, the pattern's keyword arguments) for every named URL in NAMESPACES."""
    found = []

    def walk(patterns, namespace):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name and namespace in NAMESPACES:
                found.append((f"{namespace}:{entry.name}", list(entry.pattern.converters)))

    walk(get_resolver().url_patterns, None)
    return found


def org_scoped() -> list[str]:
    return sorted(name for name, kwargs in named_patterns() if "org_id" in kwargs)


@pytest.fixture
def world(alice, bob, org, app, settings):
    """Alice's organization with one of everything a URL can name."""
    # Single sign-on's pages exist only while it is configured (no provider is contacted here).
    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = "https://id.example.com", "c", "s"
    domain = SsoDomain.objects.create(organization=org, domain="acme.example", role=Role.VIEWER)
    store_events(app, 1)
    invitation = services.invite_member(org, role=Role.VIEWER, by=alice)
    funnel = funnels.create_funnel(
        app, name="Onboarding", steps=[Step("command_execution", "init"), Step("command_execution", "build")],
        window_seconds=3600, by=alice,
    )  # fmt: skip
    rule = alert_services.create_rule(app, name="stopped", kind=RuleKind.SILENCE, minutes=60, by=alice)
    channel, _ = alert_services.create_channel(org, name="hooks", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/x")
    share = shares.create_share_link(app, sections=["overview", "badges"], by=alice, now=timezone.now())
    return {
        "share_link_id": share.link.pk,
        "kind": "users",  # a badge
        "rule_id": rule.pk,
        "domain_id": domain.pk,
        "channel_id": channel.pk,
        "funnel_id": funnel.pk,
        "org_id": org.public_id,
        "app_id": app.public_id,
        "member_id": Membership.objects.get(organization=org, user=bob).pk,
        "invitation_id": invitation.pk,
        "event_id": app.events.values_list("event_id", flat=True).first(),
        "token": invitation.token,
        "uidb64": "MQ",
        "session_id": 0,
        "credential_id": app.credentials.get().pk,
        "token_prefix": app.credentials.get().token_prefix,
        "command": "build",  # the command of tests.factories.make_event
    }


def url_for(name: str, world: dict) -> str:
    kwargs = {key: world[key] for key in next(k for n, k in named_patterns() if n == name)}
    return reverse(name, kwargs=kwargs)


def form_for(name: str, world: dict) -> tuple[dict, str]:
    """The POST_ONLY form of the action, filled in from the world, and what success says."""
    data, says = POST_ONLY[name]
    return {key.format(**world): value.format(**world) for key, value in data.items()}, says


def text(response) -> str:
    """The page's visible text, tags stripped, entities decoded and whitespace folded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def heading(response) -> str:
    match = re.search(r"<h1>(.*?)</h1>", response.content.decode(), flags=re.S)
    assert match, "the page has no heading"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match[1])).split())


def test_every_page_is_classified():
    names = {name for name, _ in named_patterns()}
    unclassified = names - NOT_ORG_SCOPED - set(MIN_ROLE)
    assert not unclassified, f"say which role these need in MIN_ROLE (or add to NOT_ORG_SCOPED): {sorted(unclassified)}"
    scoped = set(org_scoped())
    assert scoped == set(MIN_ROLE), "MIN_ROLE must name exactly the organization pages"
    assert len(scoped) >= 20  # the walk really found the pages
    # Each is a page with a heading, a fragment of one, or an action with a form that works (all checked below).
    assert set(HEADINGS) | set(FRAGMENTS) | set(POST_ONLY) == scoped and not set(HEADINGS) & set(POST_ONLY)
    assert set(CONFIRMED) <= set(POST_ONLY)


@pytest.mark.parametrize("name", sorted(MIN_ROLE))
def test_alice_the_owner_uses_every_page_and_action(name, world, login, alice):
    client = login(alice)
    url = url_for(name, world)
    if name in CONFIRMED:
        query, title = CONFIRMED[name][:2]
        confirmation = client.get(url + query.format(**world))
        assert confirmation.status_code == 200
        assert heading(confirmation) == title.format(**world)
    if name in POST_ONLY:
        if name not in CONFIRMED:
            assert client.get(url).status_code == 405
        data, says = form_for(name, world)
        response = client.post(url, data, follow=True)
        assert response.status_code == 200
        assert says in text(response)
    else:
        response = client.get(url)
        assert response.status_code == 200
        if name in FRAGMENTS:
            assert FRAGMENTS[name] in response.content.decode()
        else:
            assert heading(response) == HEADINGS[name]


@pytest.mark.parametrize("name", org_scoped())
def test_charlie_gets_404_on_every_page_and_action_of_alices_organization(name, world, login, charlie):
    client = login(charlie)
    url = url_for(name, world)
    get = client.get(url)
    # 405 answers a GET to a POST-only action before any lookup: it says nothing about the organization.
    assert get.status_code in (404, 405), f"GET {url} -> {get.status_code}"
    post = client.post(url, {"name": "x", "role": "owner", "choice": "7", "confirm": "my-cli"})
    assert post.status_code in (404, 405), f"POST {url} -> {post.status_code}"
    assert b"Alice Org" not in get.content + post.content


def names_with_inner_ids() -> list[str]:
    inner = {"app_id", "member_id", "invitation_id", "event_id", "funnel_id", "rule_id", "channel_id", "domain_id"}
    return sorted(name for name, kwargs in named_patterns() if "org_id" in kwargs and inner & set(kwargs))


@pytest.mark.parametrize("name", names_with_inner_ids())
def test_charlie_cannot_reach_alices_things_through_his_own_organization(name, world, login, charlie):
    own = make_org(name="Charlie Corp", owner=charlie)
    make_app(own, name="charlies-cli")
    url = url_for(name, {**world, "org_id": own.public_id})
    client = login(charlie)
    assert client.get(url).status_code in (404, 405), url
    assert client.post(url, {"confirm": "my-cli", "role": "owner"}).status_code in (404, 405), url


@pytest.mark.parametrize("name", org_scoped())
def test_an_anonymous_visitor_gets_sign_in_or_404(name, world, client):
    url = url_for(name, world)
    for response in (client.get(url), client.post(url)):
        if response.status_code == 302:
            assert response.url.startswith("/accounts/login/"), url
        else:
            assert response.status_code in (404, 405), f"{url} -> {response.status_code}"


def assert_refused(response, url: str) -> None:
    assert response.status_code == 403, f"{url} -> {response.status_code}"
    assert heading(response) == "Not allowed"


def attempt(client, name: str, world: dict):
    """A POST that would succeed for a member with the right role."""
    data = form_for(name, world)[0] if name in POST_ONLY else {"name": "x", "role": "owner", "choice": "7"}
    return client.post(url_for(name, world), data)


@pytest.mark.parametrize("name", sorted(n for n, role in MIN_ROLE.items() if role != Role.VIEWER))
def test_bob_the_viewer_gets_403_on_admin_and_owner_pages(name, world, login, bob, app):
    client = login(bob)
    url = url_for(name, world)
    if name not in POST_ONLY or name in CONFIRMED:
        assert_refused(client.get(url), url)
    assert_refused(attempt(client, name, world), url)
    app.refresh_from_db()
    assert (app.name, app.is_active, app.retention_override) == ("my-cli", True, False)


@pytest.mark.parametrize("name", sorted(n for n, role in MIN_ROLE.items() if role == Role.VIEWER))
def test_bob_the_viewer_reads_the_viewer_pages(name, world, login, bob):
    response = login(bob).get(url_for(name, world))
    assert response.status_code == 200
    if name in FRAGMENTS:
        assert FRAGMENTS[name] in response.content.decode()
    else:
        assert heading(response) == HEADINGS[name]


@pytest.mark.parametrize("name", sorted(n for n, role in MIN_ROLE.items() if role == Role.ADMIN))
def test_an_admin_reaches_the_admin_pages_and_uses_their_actions(name, world, login, bob):
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)
    client = login(bob)
    url = url_for(name, world)
    if name in POST_ONLY:
        data, says = form_for(name, world)
        response = client.post(url, data, follow=True)
        assert response.status_code == 200, url
        assert says in text(response)
    else:
        response = client.get(url)
        assert response.status_code == 200, url
        assert heading(response) == HEADINGS[name]


@pytest.mark.parametrize("name", sorted(n for n, role in MIN_ROLE.items() if role == Role.OWNER))
def test_an_admin_gets_403_on_owner_pages(name, world, login, bob, org):
    Membership.objects.filter(user=bob).update(role=Role.ADMIN)
    client = login(bob)

    assert_refused(attempt(client, name, world), url_for(name, world))
    org.refresh_from_db()
    assert (org.retention_days, Membership.objects.get(user=bob).role) == (90, Role.ADMIN)


def test_the_viewer_navigation_hides_admin_and_owner_links(world, login, bob, alice):
    bob_page = login(bob).get(f"/orgs/{world['org_id']}/apps/").content.decode()
    assert "/audit/" not in bob_page and "/settings/" not in bob_page and "/credentials/" not in bob_page
    alice_page = login(alice).get(f"/orgs/{world['org_id']}/apps/").content.decode()
    assert "/audit/" in alice_page and f"/orgs/{world['org_id']}/settings/" in alice_page and "/credentials/" in alice_page


def test_charlie_sees_nothing_of_alice_on_pages_outside_organizations(world, login, charlie):
    client = login(charlie)
    for name in sorted(NOT_ORG_SCOPED - {"organizations:invite_accept", "organizations:logout"}):
        response = client.get(url_for(name, world), follow=True)
        assert b"Alice Org" not in response.content, name
        assert world["app_id"].encode() not in response.content, name
