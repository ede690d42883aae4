"""An organization's single sign-on email-domain rules: owners only, audited, off without SSO."""

from __future__ import annotations

import pytest

from organizations.models import AuditEntry, Role, SsoDomain
from organizations.sso import normalize_domain
from tests.factories import make_member, make_user


@pytest.fixture
def sso_configured(settings):
    # Only the pages are exercised here: no sign-in, so no provider is contacted.
    settings.OIDC_ISSUER = "https://id.example.com"
    settings.OIDC_CLIENT_ID = "clacks"
    settings.OIDC_CLIENT_SECRET = "secret"


def url(org, rest: str = "") -> str:
    return f"/orgs/{org.public_id}/settings/sso/{rest}"


def test_an_owner_adds_a_domain_with_a_role(client, alice, org, sso_configured):
    client.force_login(alice)

    response = client.post(url(org), {"domain": " @Acme.Example ", "role": "admin"})

    assert response.status_code == 302
    rule = SsoDomain.objects.get(organization=org)
    assert (rule.domain, rule.role, rule.created_by) == ("acme.example", Role.ADMIN, alice)
    entry = AuditEntry.objects.get(organization=org, action="sso_domain.add")
    assert (entry.target, entry.actor, entry.details) == ("acme.example", alice, {"role": "admin"})
    page = client.get(url(org)).content.decode()
    assert "@acme.example" in page and "Admin" in page


def test_an_owner_removes_a_domain(client, alice, org, sso_configured):
    rule = SsoDomain.objects.create(organization=org, domain="acme.example", role=Role.VIEWER)
    client.force_login(alice)

    response = client.post(url(org, f"{rule.pk}/remove/"))

    assert response.status_code == 302
    assert not SsoDomain.objects.exists()
    assert AuditEntry.objects.filter(organization=org, action="sso_domain.remove", target="acme.example").exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"domain": "not a domain", "role": "viewer"}, "Enter a domain name such as example.com."),
        ({"domain": "localhost", "role": "viewer"}, "Enter a domain name such as example.com."),
        ({"domain": "acme.example", "role": "owner"}, "Select a valid choice."),
    ],
)
def test_a_bad_rule_is_a_message_on_the_page(client, alice, org, sso_configured, data, message):
    client.force_login(alice)

    response = client.post(url(org), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SsoDomain.objects.exists()


def test_the_same_domain_twice_is_a_message(client, alice, org, sso_configured):
    SsoDomain.objects.create(organization=org, domain="acme.example", role=Role.VIEWER)
    client.force_login(alice)

    response = client.post(url(org), {"domain": "acme.example", "role": "admin"})

    assert response.status_code == 400
    assert "already has a rule for this domain" in response.content.decode()


def test_an_admin_may_not_see_or_change_the_rules(client, org, sso_configured):
    admin = make_user("dora")
    make_member(org, admin, role=Role.ADMIN)
    rule = SsoDomain.objects.create(organization=org, domain="acme.example", role=Role.VIEWER)
    client.force_login(admin)

    assert client.get(url(org)).status_code == 403
    assert client.post(url(org), {"domain": "evil.example", "role": "admin"}).status_code == 403
    assert client.post(url(org, f"{rule.pk}/remove/")).status_code == 403
    assert list(SsoDomain.objects.values_list("domain", flat=True)) == ["acme.example"]


def test_charlie_cannot_see_or_touch_alices_rules(client, charlie, org, sso_configured):
    rule = SsoDomain.objects.create(organization=org, domain="acme.example", role=Role.VIEWER)
    client.force_login(charlie)

    assert client.get(url(org)).status_code == 404
    assert client.post(url(org, f"{rule.pk}/remove/")).status_code == 404
    assert SsoDomain.objects.exists()


def test_a_rule_of_another_organization_cannot_be_removed_through_mine(client, alice, charlie, org, sso_configured):
    from tests.factories import make_org

    other = make_org(name="Charlie Org", owner=charlie)
    rule = SsoDomain.objects.create(organization=other, domain="acme.example", role=Role.VIEWER)
    client.force_login(alice)

    assert client.post(url(org, f"{rule.pk}/remove/")).status_code == 404
    assert SsoDomain.objects.filter(pk=rule.pk).exists()


def test_the_settings_page_links_the_rules_only_with_single_sign_on(client, alice, org, settings):
    client.force_login(alice)
    settings_page = f"/orgs/{org.public_id}/settings/"

    assert url(org) not in client.get(settings_page).content.decode()
    assert client.get(url(org)).status_code == 404

    settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = "https://id.example.com", "c", "s"
    assert url(org) in client.get(settings_page).content.decode()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("example.com", "example.com"),
        ("@Example.COM.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("sub.example.co.uk", "sub.example.co.uk"),
        ("example", None),
        ("-bad.example", None),
        ("a..example", None),
        ("ex ample.com", None),
        ("user@example.com", None),
    ],
)
def test_domains_are_normalized_or_refused(value, expected):
    assert normalize_domain(value) == expected


def test_a_superuser_reads_identities_and_rules_in_the_admin_without_adding_any(client, alice, org):
    from organizations.models import SsoIdentity

    admin = make_user("root", is_superuser=True, is_staff=True)
    SsoIdentity.objects.create(user=alice, issuer="https://id.example.com", subject="sub-0042")
    SsoDomain.objects.create(organization=org, domain="acme.example", role=Role.VIEWER)
    client.force_login(admin)

    assert "sub-0042" in client.get("/admin/organizations/ssoidentity/").content.decode()
    assert "acme.example" in client.get("/admin/organizations/ssodomain/").content.decode()
    assert client.get("/admin/organizations/ssoidentity/add/").status_code == 403
    assert client.get("/admin/organizations/ssodomain/add/").status_code == 403
