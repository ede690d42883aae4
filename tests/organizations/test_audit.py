"""The organization's audit log page."""

from __future__ import annotations

from organizations import services
from organizations.models import AuditEntry, Credential
from tests.factories import make_org


def test_the_audit_log_lists_what_happened_newest_first(login, alice, org, app):
    credential = Credential.objects.get(app=app)
    services.reveal_secret(credential, by=alice)
    services.rotate_credentials(app, by=alice)
    page = login(alice).get(f"/orgs/{org.public_id}/audit/")
    body = page.content.decode()
    assert page.status_code == 200
    assert body.index("credentials.rotate") < body.index("credentials.reveal") < body.index("app.create")
    assert "alice" in body and app.public_id in body


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
    body = login(alice).get(f"/orgs/{org.public_id}/audit/").content.decode()
    assert "name: Alice Org → Renamed" in body
    assert "from: days none, override no" in body
    assert "to: days 30, override yes" in body
