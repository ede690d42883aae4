"""organizations.sso and the claims organizations.oidc takes from a verified sign-in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from organizations import sso
from organizations.oidc import _claims
from tests.factories import make_user

ISSUER = "https://id.example.com"


def test_the_id_tokens_address_and_its_verification_are_taken_together():
    claims = _claims(
        {"sub": "1", "email": "ada@acme.test", "email_verified": True, "preferred_username": "ada"},
        {"sub": "1", "email": "other@acme.test", "email_verified": False},
    )

    assert (claims.email, claims.email_verified, claims.preferred_username) == ("ada@acme.test", True, "ada")


def test_without_an_address_in_the_id_token_userinfo_gives_both():
    claims = _claims({"sub": "1"}, {"sub": "1", "email": "ada@acme.test", "email_verified": True, "name": "Ada L"})

    assert (claims.email, claims.email_verified, claims.name) == ("ada@acme.test", True, "Ada L")


@pytest.mark.parametrize("value", ["true", "True", 1, None])
def test_only_a_json_true_counts_as_verified(value):
    assert _claims({"sub": "1", "email": "a@acme.test", "email_verified": value}, None).email_verified is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "claims, username",
    [
        (sso.Claims(subject="1", preferred_username="ada lovelace!", email="ada@acme.test"), "adalovelace"),
        (sso.Claims(subject="2", email="ada@acme.test"), "ada@acme.test"),
        (sso.Claims(subject="3", preferred_username="x" * 300), "x" * 142),
    ],
)
def test_the_username_comes_from_preferred_username_or_the_address(claims, username):
    result = sso.sign_in(issuer=ISSUER, claims=claims)

    assert result.created and result.user.username == username


@pytest.mark.django_db
def test_a_taken_name_gets_a_number_whatever_its_case():
    make_user("Ada")
    make_user("ada-2")

    result = sso.sign_in(issuer=ISSUER, claims=sso.Claims(subject="1", preferred_username="ada"))

    assert result.user.username == "ada-3"


@pytest.mark.django_db
def test_without_a_name_or_address_the_account_still_gets_one():
    result = sso.sign_in(issuer=ISSUER, claims=sso.Claims(subject="1"))

    assert result.user.username.startswith("sso-")
    assert not result.user.has_usable_password()


@pytest.mark.django_db
def test_the_same_subject_at_another_issuer_is_another_person():
    first = sso.sign_in(issuer=ISSUER, claims=sso.Claims(subject="1", preferred_username="ada"))
    second = sso.sign_in(issuer="https://other.example.com", claims=sso.Claims(subject="1", preferred_username="ada"))

    assert first.user.pk != second.user.pk
    assert get_user_model().objects.count() == 2
