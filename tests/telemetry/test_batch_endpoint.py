"""POST /v1/events/batch: the self-hosting guide's clients name the app by bearer token."""

import orjson

from telemetry.models import Event
from tests.factories import make_batch
from tests.signing import signed_headers


def post_batch(client, body, *, secret, token=None, nonce=None):
    headers = signed_headers(secret, body, nonce=nonce)
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post("/v1/events/batch", body, content_type="application/json", **headers)


def test_the_token_names_the_app_and_the_guides_signature_is_checked(client, app, secret, token):
    response = post_batch(client, orjson.dumps(make_batch(2)), secret=secret, token=token)

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert Event.objects.for_app(app).count() == 2


def test_the_sdk_form_with_a_nonce_is_accepted_too(client, app, secret, token):
    response = post_batch(client, orjson.dumps(make_batch(1)), secret=secret, token=token, nonce="abc-1")

    assert response.status_code == 200


def test_without_a_token_it_is_a_401(client, app, secret):
    response = post_batch(client, orjson.dumps(make_batch(1)), secret=secret)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_token"


def test_an_unknown_token_and_a_bad_signature_get_the_same_answer(client, app, secret, token):
    body = orjson.dumps(make_batch(1))
    unknown = post_batch(client, body, secret=secret, token="clk_unknown")
    bad_signature = post_batch(client, body, secret="wrong", token=token)

    assert unknown.status_code == bad_signature.status_code == 401
    assert unknown.json() == bad_signature.json()


def test_a_signature_is_still_required(client, app, token):
    response = client.post(
        "/v1/events/batch", orjson.dumps(make_batch(1)), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 401
    assert Event.objects.count() == 0
