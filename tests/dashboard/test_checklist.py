"""The first-run checklist on a new app's overview ticks itself as each step happens."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from organizations import services
from organizations.models import Role
from tests.dashboard.conftest import sdk_event, store
from tests.factories import make_member, make_user


def overview(app) -> str:
    return f"/orgs/{app.organization.public_id}/apps/{app.public_id}/"


def steps(client, app) -> dict[str, bool]:
    """{step label: done} as the overview shows them; {} when there is no checklist."""
    page = client.get(overview(app)).content.decode()
    return {
        label: state == "done"
        for label, state in re.findall(r'<a href="[^"]*">([^<]+)</a>\s*<span class="visually-hidden">\((done|to do)\)</span>', page)
    }


def test_each_step_ticks_itself_as_it_happens(client, alice, org, app):
    org.memberships.exclude(user=alice).delete()  # alice alone: no teammate yet
    client.force_login(alice)
    assert steps(client, app) == {
        "Copy the credentials": False,
        "Add the SDK to your program": False,
        "Receive the first event": False,
        "Invite a teammate": False,
        "Choose how long to keep events": False,
    }

    client.get(overview(app) + "credentials/")
    assert steps(client, app)["Copy the credentials"] is True

    sdk_now = datetime.now(timezone.utc)
    curl = sdk_event(sdk_now)
    curl["metadata"]["sdk_version"] = "curl"
    store(app, curl, now=sdk_now)
    now = steps(client, app)
    assert (now["Receive the first event"], now["Add the SDK to your program"]) == (True, False)

    store(app, sdk_event(sdk_now), now=sdk_now)
    assert steps(client, app)["Add the SDK to your program"] is True

    services.invite_member(org, role=Role.VIEWER, by=alice)
    assert steps(client, app)["Invite a teammate"] is True

    services.set_app_retention(app, override=True, days=30, by=alice)
    assert steps(client, app) == {}  # all done: the checklist goes


def test_a_second_member_counts_as_a_teammate_and_the_org_default_as_a_choice(client, alice, org, app):
    make_member(org, make_user("dora"), role=Role.ADMIN)
    services.set_organization_retention(org, days=30, by=alice)
    client.force_login(alice)
    now = steps(client, app)
    assert now["Invite a teammate"] is True
    assert now["Choose how long to keep events"] is True


def test_hiding_the_checklist_hides_it_for_everyone(client, alice, org, app):
    dora = make_user("dora")
    make_member(org, dora, role=Role.ADMIN)
    client.force_login(alice)
    assert steps(client, app)
    response = client.post(overview(app) + "checklist/dismiss/")
    assert response.status_code == 302
    assert steps(client, app) == {}
    client.force_login(dora)
    assert steps(client, app) == {}


def test_viewers_see_no_checklist_and_cannot_hide_it(client, bob, app):
    client.force_login(bob)
    assert steps(client, app) == {}
    assert client.post(overview(app) + "checklist/dismiss/").status_code == 403
