"""The organization's audit log page."""

from __future__ import annotations

import html
import re

from organizations import services
from organizations.models import AuditEntry, Credential, Membership, Role
from tests.factories import make_org


def test_the_audit_log_lists_what_happened_newest_first(login, alice, org, app):
    credential = Credential.objects.get(app=app)
    services.reveal_secret(credential, by=alice)
    services.rotate_credentials(app, by=alice)
    page = login(alice).get(f"/orgs/{org.public_id}/audit/")
    body = page.content.decode()
    assert page.status_code == 200
    assert body.index("issued new credentials") < body.index("revealed the secret") < body.index("created the app")
    prefix = credential.token_prefix
    assert f"alice revealed the secret of {prefix}… of <a href=\"/orgs/{org.public_id}/apps/{app.public_id}/credentials/\">my-cli</a>." in body


def test_the_audit_log_shows_only_this_organizations_entries(login, alice, charlie, org):
    other = make_org(name="Charlie Corp", owner=charlie)
    services.record_audit(other, action="organization.update", target="secret-plans", actor=charlie)
    page = login(alice).get(f"/orgs/{org.public_id}/audit/")
    assert b"secret-plans" not in page.content


def test_an_empty_audit_log_says_what_will_appear(login, alice, org):
    AuditEntry.objects.all().delete()
    assert b"Nothing recorded yet" in login(alice).get(f"/orgs/{org.public_id}/audit/").content


def test_the_audit_log_pages_by_fifty(login, alice, org):
    for n in range(60):
        services.record_audit(org, action="organization.update", target=f"t{n}", actor=alice)
    client = login(alice)
    first = client.get(f"/orgs/{org.public_id}/audit/")
    assert b"Page 1 of 2" in first.content
    second = client.get(f"/orgs/{org.public_id}/audit/?page=2")
    assert b"Page 2 of 2" in second.content
    assert client.get(f"/orgs/{org.public_id}/audit/?page=banana").status_code == 200


def test_changes_read_old_to_new(login, alice, org, app):
    services.set_app_retention(app, override=True, days=30, by=alice)
    services.update_organization(org, name="Renamed", tier=org.tier, is_active=org.is_active, by=alice)
    body = html.unescape(login(alice).get(f"/orgs/{org.public_id}/audit/").content.decode())
    assert "alice changed the organization's name from “Alice Org” to “Renamed”." in body
    assert (
        f'alice changed the retention of <a href="/orgs/{org.public_id}/apps/{app.public_id}/settings/">my-cli</a>'
        " from the organization's default to 30 days." in body
    )


def test_a_role_change_reads_as_a_sentence_linking_to_the_members(login, alice, bob, org):
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    services.change_role(Membership.objects.get(organization=org, user=bob), role=Role.ADMIN, by=alice)
    body = html.unescape(login(alice).get(f"/orgs/{org.public_id}/audit/").content.decode())
    assert f'Alice Liddell changed <a href="/orgs/{org.public_id}/members/">bob</a>\'s role from viewer to admin.' in body
    # The time is the viewer's (UTC here, said so), the instant in UTC on hover.
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+ UTC">\d+ \w+ \d{4}, \d\d:\d\d UTC</time>', body)


def test_a_deleted_app_is_named_but_not_linked_and_unknown_actions_still_read(login, alice, org, app):
    services.delete_app(app, by=alice)
    services.record_audit(org, action="two_factor.enable", target="alice", actor=None, details={"method": "totp"})
    body = html.unescape(login(alice).get(f"/orgs/{org.public_id}/audit/").content.decode())
    assert "alice deleted the app <strong>my-cli</strong> and its 0 events." in body
    assert "The system did “two factor enable” on <strong>alice</strong>." in body
    assert "method: totp" in body


def test_filters_by_kind_of_action_and_by_person(login, alice, bob, org, app):
    services.rotate_credentials(app, by=alice)
    services.record_audit(org, action="member.role", target="carol", actor=bob, details={"from": "viewer", "to": "admin"})
    services.record_audit(org, action="retention.organization", target=org.public_id, details={"from": 90, "to": 30})
    client = login(alice)

    def sentences(query: str) -> list[str]:
        body = client.get(f"/orgs/{org.public_id}/audit/?{query}").content.decode()
        return [html.unescape(re.sub(r"<[^>]+>", "", s)) for s in re.findall(r'<p class="audit-what">(.*?)</p>', body)]

    assert len(sentences("")) == 4  # with app.create
    assert sentences("action=credentials") == [f"alice issued new credentials (token {Credential.objects.filter(app=app).latest('pk').token_prefix}…) for my-cli."]
    assert sentences("person=" + str(bob.pk)) == ["bob changed carol's role from viewer to admin."]
    assert sentences("person=system") == [  # the test factory creates the app without a person
        "The system changed the organization's default retention from 90 days to 30 days.",
        "The system created the app my-cli.",
    ]
    assert sentences("action=members&person=" + str(alice.pk)) == []
    assert len(sentences("action=nonsense&person=banana")) == 4  # unknown filters are ignored
    body = client.get(f"/orgs/{org.public_id}/audit/").content.decode()
    assert f'<option value="{bob.pk}">bob</option>' in body and '<option value="system">' in body
