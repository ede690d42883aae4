"""The navigation context: the switcher's list read only when shown, and the organization
used last written to the session only when it changes."""

from __future__ import annotations

import re

from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from organizations.context_processors import LAST_ORG_SESSION_KEY, navigation
from tests.factories import make_org


def session_writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"] and not q["sql"].startswith("SELECT")]


def test_the_session_is_written_when_the_organization_changes_and_not_again(login, alice, org):
    other = make_org(name="Zebra", owner=alice)
    client = login(alice)
    client.get(f"/orgs/{other.public_id}/apps/")

    with CaptureQueriesContext(connection) as switching:
        client.get(f"/orgs/{org.public_id}/apps/")
    with CaptureQueriesContext(connection) as staying:
        client.get(f"/orgs/{org.public_id}/members/")

    assert len(session_writes(switching)) == 1
    assert session_writes(staying) == []
    assert client.session[LAST_ORG_SESSION_KEY] == org.public_id


def test_a_page_of_someone_elses_organization_is_not_remembered(login, org, charlie):
    client = login(charlie)

    assert client.get(f"/orgs/{org.public_id}/apps/").status_code == 404
    assert LAST_ORG_SESSION_KEY not in client.session


def test_the_memberships_are_read_only_when_a_template_uses_them(alice, org, django_assert_num_queries):
    request = RequestFactory().get(f"/orgs/{org.public_id}/apps/")
    request.user = alice
    request.session = {LAST_ORG_SESSION_KEY: org.public_id}
    request.resolver_match = resolve(request.path)

    with django_assert_num_queries(0):
        context = navigation(request)
    with django_assert_num_queries(1):
        names = [m.organization.name for m in context["nav_memberships"]]
        assert [m.organization.name for m in context["nav_memberships"]] == names  # read once

    assert names == ["Alice Org"]


def test_the_switcher_marks_the_pages_organization(login, alice, org):
    other = make_org(name="Zebra", owner=alice)

    page = login(alice).get(f"/orgs/{other.public_id}/members/").content.decode()

    current = re.findall(r'<a href="(/orgs/[^"]+/)"\s+aria-current="true"', page)
    assert current == [f"/orgs/{other.public_id}/"]
    assert f'<a href="/orgs/{org.public_id}/"' in page
