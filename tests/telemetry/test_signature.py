"""docs/protocol.md, Signature: the test vectors, unchanged."""

from telemetry.auth import sign, signature_matches

SECRET = "kIRV9eC/2+Dvqc4E9ubP9Cjzd0LG2/Dg0OVEfknKBPQ="
TIMESTAMP = "1732003200"
BODY = b'{"events":[]}'


def test_the_sdk_form_with_a_nonce_matches_the_protocol_vector():
    assert (
        sign(SECRET, TIMESTAMP, BODY, "550e8400-e29b-41d4-a716-446655440000")
        == "acb382d7cd11d05778029f528eb2a14ec89cc595b033dd490723c745345a293e"
    )


def test_the_guide_form_without_a_nonce_matches_the_protocol_vector():
    assert sign(SECRET, TIMESTAMP, BODY) == "46b4ba3f28cc97d2688f0981eb4b12e4b10532f7945a9a3476352ed09d625619"


def test_any_of_the_active_secrets_may_sign():
    signature = sign("new-secret", TIMESTAMP, BODY, "n")

    assert signature_matches(["old-secret", "new-secret"], signature=signature, timestamp=TIMESTAMP, nonce="n", body=BODY)
    assert not signature_matches(["old-secret"], signature=signature, timestamp=TIMESTAMP, nonce="n", body=BODY)


def test_uppercase_hex_is_the_same_signature():
    signature = sign(SECRET, TIMESTAMP, BODY).upper()

    assert signature_matches([SECRET], signature=signature, timestamp=TIMESTAMP, nonce=None, body=BODY)
