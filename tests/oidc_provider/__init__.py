"""A small OpenID provider (django-oidc-provider) that the single sign-on tests sign in through.

It runs as its own process with its own settings and SQLite file, started by the
`oidc_provider` fixture (tests/oidc_provider/fixture.py): Clacks talks to it over
HTTP on 127.0.0.1 exactly as it would to a company's identity provider.
"""
