"""Prepare the test provider's database: `python -m tests.oidc_provider.setup_provider [--redirect-uri URL]...`.

Run by the fixture with DJANGO_SETTINGS_MODULE=tests.oidc_provider.settings.
Creates the tables, a signing key, the client Clacks uses and the people who
sign in (PEOPLE), and adds each --redirect-uri to the client's registered ones.
"""

import argparse

import django

CLIENT_ID = "clacks-test"
CLIENT_SECRET = "clacks-test-client-secret"
PASSWORD = "provider-password"
# username: (email, verified)
PEOPLE = {
    "ada": ("ada@acme.test", True),
    "eve": ("eve@acme.test", False),
    "grace": ("grace@elsewhere.test", True),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redirect-uri", action="append", default=[])
    args = parser.parse_args()
    django.setup()

    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from oidc_provider.models import Client, ResponseType, RSAKey

    from tests.oidc_provider.claims import UNVERIFIED_GROUP

    call_command("migrate", verbosity=0)
    if not RSAKey.objects.exists():
        call_command("creatersakey", verbosity=0)
    client, _ = Client.objects.get_or_create(
        client_id=CLIENT_ID,
        defaults={
            "name": "Clacks",
            "client_type": "confidential",
            "client_secret": CLIENT_SECRET,
            "jwt_alg": "RS256",
            # Ask every time, so a test can decline.
            "require_consent": True,
            "reuse_consent": False,
        },
    )
    client.response_types.add(ResponseType.objects.get(value="code"))
    client.redirect_uris = list(dict.fromkeys(client.redirect_uris + args.redirect_uri))
    client.save()

    unverified, _ = Group.objects.get_or_create(name=UNVERIFIED_GROUP)
    for username, (email, verified) in PEOPLE.items():
        if User.objects.filter(username=username).exists():
            continue
        user = User.objects.create_user(username, email=email, password=PASSWORD, first_name=username.title())
        if not verified:
            user.groups.add(unverified)


if __name__ == "__main__":
    main()
