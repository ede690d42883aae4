"""POST /v1/ingest/{org_id}/{app_id}: every row of docs/protocol.md, Responses."""

from __future__ import annotations

import gzip
import time
import uuid

import orjson
import pytest

from organizations.services import forget_cached_app, rotate_credentials
from telemetry.models import Event
from tests.factories import make_batch, make_event

OVERHEAD = "GNU Terry Pratchett"


def error_code(response) -> str:
    body = response.json()
    assert set(body["error"]) <= {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str)
    return body["error"]["code"]


# --- 200 -------------------------------------------------------------------------------


def test_it_stores_a_signed_batch_and_says_so_in_the_sdks_shape(signed_post, app):
    response = signed_post(app, make_batch(3))

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "success",
        "accepted": 3,
        "rejected": 0,
        "duplicates": 0,
        "message": "3 events accepted.",
    }
    assert response["X-Clacks-Overhead"] == OVERHEAD
    assert response["Content-Type"] == "application/json"
    assert Event.objects.for_app(app).count() == 3


def test_it_stores_every_field_of_an_sdk_event(signed_post, app):
    event = make_event(timestamp="2026-11-23T23:50:56.714992575Z")
    event["environment"]["os_version"] = "6.5.0"

    assert signed_post(app, {"events": [event]}).status_code == 200

    stored = Event.objects.get(app=app)
    assert str(stored.event_id) == event["event_id"]
    assert stored.timestamp.isoformat() == "2026-11-23T23:50:56.714992+00:00"
    assert (stored.event_type, stored.category) == ("command_execution", "usage")
    assert (stored.service_name, stored.service_version, stored.service_language) == ("my-cli", "1.2.0", "rust")
    assert stored.service_language_version == "1.75.0"
    assert (stored.os, stored.os_version, stored.arch, stored.ci, stored.shell) == (
        "linux", "6.5.0", "x86_64", False, "bash",
    )
    assert stored.user_id == event["user_id"]
    assert stored.session_id == event["session_id"]
    assert stored.sdk_version == "telemetry-kit-rust/0.3.0"
    assert stored.data == {"command": "build", "duration_ms": 1234, "success": True}


def test_it_accepts_optional_fields_omitted_or_null(signed_post, app):
    omitted = make_event()
    del omitted["session_id"], omitted["service"]["language_version"], omitted["event"]["category"]
    omitted["environment"] = {"os": "macos"}
    nulls = make_event(session_id=None)
    nulls["environment"].update(arch=None, ci=None, shell=None, os_version=None)
    nulls["event"]["category"] = None

    response = signed_post(app, {"events": [omitted, nulls]})

    assert response.status_code == 200, response.json()
    assert Event.objects.filter(app=app, session_id="", category="", ci=None).count() == 2


def test_it_accepts_the_doubled_slash_of_an_endpoint_with_a_trailing_slash(signed_post, app):
    # A full URL, so the test client does not read "//v1" as a host name.
    path = f"http://testserver//v1/ingest/{app.organization.public_id}/{app.public_id}"

    assert signed_post(app, make_batch(1), path=path).status_code == 200


def test_a_bearer_token_is_optional_but_must_be_the_apps_when_sent(signed_post, app, token):
    assert signed_post(app, make_batch(1), headers={"Authorization": f"Bearer {token}"}).status_code == 200

    response = signed_post(app, make_batch(1), headers={"Authorization": "Bearer clk_not-a-token"})
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"


def test_the_guide_form_without_a_nonce_is_accepted(signed_post, app):
    assert signed_post(app, make_batch(1), nonce=None).status_code == 200


def test_both_credential_sets_work_during_a_rotation(signed_post, app, secret):
    issued = rotate_credentials(app)

    assert signed_post(app, make_batch(1), key=secret).status_code == 200
    assert signed_post(app, make_batch(1), key=issued.secret).status_code == 200


def test_gzip_bodies_are_inflated_and_signed_as_sent(signed_post, app):
    body = gzip.compress(orjson.dumps(make_batch(2)))

    response = signed_post(app, body, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 200
    assert response.json()["accepted"] == 2


# --- Idempotency ------------------------------------------------------------------------


def test_it_accepts_a_retry_of_a_stored_batch(signed_post, app):
    body = orjson.dumps(make_batch(2))
    first = signed_post(app, body)
    retry = signed_post(app, body)  # new timestamp and nonce, same bytes

    assert first.status_code == retry.status_code == 200
    assert retry.json()["accepted"] == 2
    assert retry.json()["duplicates"] == 2
    assert Event.objects.for_app(app).count() == 2


def test_an_event_id_twice_in_one_batch_is_stored_once(signed_post, app):
    event = make_event()

    response = signed_post(app, {"events": [event, event]})

    assert response.json()["accepted"] == 2
    assert response.json()["duplicates"] == 1
    assert Event.objects.for_app(app).count() == 1


def test_event_ids_are_unique_per_app_not_globally(signed_post, app, org):
    from tests.factories import make_app

    other, other_credentials = make_app(org, name="other")
    body = orjson.dumps(make_batch(1))

    assert signed_post(app, body).json()["duplicates"] == 0
    assert signed_post(other, body, key=other_credentials.secret).json()["duplicates"] == 0
    assert Event.objects.count() == 2


# --- 207 --------------------------------------------------------------------------------


def test_a_bad_event_is_rejected_alone_and_the_rest_stored(signed_post, app):
    bad = make_event(user_id="alice@example.com")

    response = signed_post(app, {"events": [make_event(), bad, make_event()]})

    assert response.status_code == 207
    body = response.json()
    assert (body["status"], body["accepted"], body["rejected"], body["duplicates"]) == ("partial", 2, 1, 0)
    assert body["errors"] == [
        {"event_id": bad["event_id"], "error": "invalid_schema", "message": body["errors"][0]["message"]}
    ]
    assert Event.objects.for_app(app).count() == 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda e: e.update(schema_version="2.0.0"), "unsupported_schema"),
        (lambda e: e.pop("schema_version"), "invalid_schema"),
        (lambda e: e.update(event_id="not-a-uuid"), "invalid_schema"),
        (lambda e: e.update(event_id=12), "invalid_schema"),
        (lambda e: e.update(timestamp="yesterday"), "invalid_schema"),
        (lambda e: e.update(timestamp="2026-02-30T10:00:00Z"), "invalid_schema"),
        (lambda e: e["service"].pop("name"), "invalid_schema"),
        (lambda e: e["service"].update(version=""), "invalid_schema"),
        (lambda e: e["service"].update(language=7), "invalid_schema"),
        (lambda e: e.update(service="my-cli"), "invalid_schema"),
        (lambda e: e.pop("user_id"), "invalid_schema"),
        (lambda e: e.update(user_id="user_1"), "invalid_schema"),
        (lambda e: e["environment"].pop("os"), "invalid_schema"),
        (lambda e: e["environment"].update(ci="yes"), "invalid_schema"),
        (lambda e: e["event"].update(type=""), "invalid_schema"),
        (lambda e: e["event"].pop("data"), "invalid_schema"),
        (lambda e: e["metadata"].pop("sdk_version"), "invalid_schema"),
        (lambda e: e["metadata"].update(batch_size="1"), "invalid_schema"),
        (lambda e: e["metadata"].update(retry_count=True), "invalid_schema"),
        (lambda e: e["metadata"].update(transmission_timestamp=None), "invalid_schema"),
        (lambda e: e.pop("metadata"), "invalid_schema"),
        (lambda e: e["event"].update(type="x" * 201), "invalid_schema"),
        (lambda e: e.update(session_id="sess_" + "a" * 300), "invalid_schema"),
        (lambda e: e["event"].update(type="build\u0000"), "invalid_schema"),
        (lambda e: e["event"].update(data={"note": "nul \u0000 inside"}), "invalid_schema"),
        (lambda e: e["event"].update(data={"nul\u0000key": 1}), "invalid_schema"),
        (lambda e: e.update(timestamp="2099-01-01T00:00:00Z"), "invalid_timestamp"),
        (lambda e: e["event"].update(data={"blob": "x" * (64 * 1024)}), "event_too_large"),
    ],
)
def test_each_per_event_rule_rejects_with_its_code(signed_post, app, change, code):
    bad = make_event()
    change(bad)

    response = signed_post(app, {"events": [make_event(), bad]})

    assert response.status_code == 207, response.json()
    assert [error["error"] for error in response.json()["errors"]] == [code]
    assert Event.objects.for_app(app).count() == 1


def test_a_rejected_event_without_a_uuid_is_reported_with_the_nil_uuid(signed_post, app):
    response = signed_post(app, {"events": [make_event(), "not an event", make_event(event_id="x")]})

    assert [error["event_id"] for error in response.json()["errors"]] == [
        "00000000-0000-0000-0000-000000000000",
        "00000000-0000-0000-0000-000000000000",
    ]


def test_an_event_id_in_another_uuid_form_is_the_same_event(signed_post, app):
    event_id = uuid.uuid4()
    stamp = make_event()["timestamp"]  # on PostgreSQL an event is once per (id, timestamp)
    upper = make_event(event_id=str(event_id).upper(), timestamp=stamp)
    braced = make_event(event_id="{" + event_id.hex + "}", timestamp=stamp)
    rejected = make_event(event_id=str(uuid.uuid4()).upper(), schema_version="2.0.0")

    first = signed_post(app, {"events": [upper, rejected]})
    again = signed_post(app, {"events": [braced]})

    assert (first.status_code, first.json()["accepted"], first.json()["duplicates"]) == (207, 1, 0)
    assert first.json()["errors"][0]["event_id"] == rejected["event_id"].lower()
    assert (again.status_code, again.json()["duplicates"]) == (200, 1)
    assert [str(event.event_id) for event in Event.objects.for_app(app)] == [str(event_id)]


def test_it_keeps_nine_digit_fractions_to_the_microsecond_and_accepts_offsets(signed_post, app):
    events = [
        make_event(timestamp="2026-11-23T23:50:56.714992575Z"),
        make_event(timestamp="2026-11-23T23:50:56Z"),
        make_event(timestamp="2026-11-24T01:50:56.123+02:00"),
    ]

    assert signed_post(app, {"events": events}).status_code == 200
    stamps = sorted(e.timestamp.isoformat() for e in Event.objects.for_app(app))
    assert stamps == [
        "2026-11-23T23:50:56+00:00",
        "2026-11-23T23:50:56.123000+00:00",
        "2026-11-23T23:50:56.714992+00:00",
    ]


def test_a_text_that_merely_looks_like_an_escaped_nul_is_stored(signed_post, app):
    event = make_event()
    event["event"]["data"] = {"path": "C:\\u0000\\dir"}  # a backslash, then the letters u0000

    assert signed_post(app, {"events": [event]}).status_code == 200
    assert Event.objects.get(app=app).data == {"path": "C:\\u0000\\dir"}


@pytest.mark.parametrize("data", [None, [], "text", 0, {}])
def test_event_data_may_be_any_json_value(signed_post, app, data):
    event = make_event()
    event["event"]["data"] = data

    assert signed_post(app, {"events": [event]}).status_code == 200
    assert Event.objects.get(app=app).data == data


def test_huge_numbers_and_deep_json_in_event_data_are_stored(signed_post, app):
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["d"] = {}
        node = node["d"]
    event = make_event()
    event["event"]["data"] = {"big": 18446744073709551615, "huge": 1e300, "neg": -(2**63), "deep": deep}

    assert signed_post(app, {"events": [event]}).status_code == 200
    assert Event.objects.get(app=app).data["big"] == 18446744073709551615


# --- 204 --------------------------------------------------------------------------------


def test_do_not_track_stores_nothing(signed_post, app):
    response = signed_post(app, make_batch(2), headers={"DNT": "1"})

    assert response.status_code == 204
    assert response.content == b""
    assert response["X-Clacks-Overhead"] == OVERHEAD
    assert Event.objects.count() == 0


# --- 400 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[" * 5000, "invalid_json"),
        (b'{"events":[{"a":1e999}]}', "invalid_json"),
        (b"[]", "invalid_batch"),
        (b'{"events": {}}', "invalid_batch"),
        (b'{"batch": []}', "invalid_batch"),
        (b'{"events": []}', "invalid_batch_size"),
    ],
)
def test_a_malformed_body_is_a_400_with_a_code(signed_post, app, body, code):
    response = signed_post(app, body)

    assert response.status_code == 400
    assert error_code(response) == code


def test_more_than_a_thousand_events_is_a_400(signed_post, app):
    event = make_event()
    response = signed_post(app, {"events": [event] * 1001})

    assert response.status_code == 400
    assert error_code(response) == "invalid_batch_size"
    assert Event.objects.count() == 0


def test_a_batch_size_header_that_disagrees_is_a_400(signed_post, app):
    response = signed_post(app, make_batch(2), headers={"X-Batch-Size": "3"})

    assert response.status_code == 400
    assert error_code(response) == "batch_size_mismatch"
    assert signed_post(app, make_batch(2), headers={"X-Batch-Size": "2"}).status_code == 200


def test_when_every_event_is_rejected_it_is_a_400_with_the_errors(signed_post, app):
    response = signed_post(app, {"events": [make_event(user_id="x"), make_event(schema_version="0.9")]})

    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "all_events_rejected"
    assert [error["error"] for error in body["errors"]] == ["invalid_schema", "unsupported_schema"]


def test_invalid_gzip_is_a_400(signed_post, app):
    response = signed_post(app, b"definitely not gzip", headers={"Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert error_code(response) == "invalid_encoding"


# --- 401 --------------------------------------------------------------------------------


def test_a_bad_signature_and_an_unknown_app_get_the_same_answer(signed_post, app):
    bad_signature = signed_post(app, make_batch(1), key="wrong secret")
    unknown_app = signed_post(app, make_batch(1), path=f"/v1/ingest/{app.organization.public_id}/app_0000000000000000")
    unknown_org = signed_post(app, make_batch(1), path=f"/v1/ingest/org_nobody/{app.public_id}")

    assert bad_signature.status_code == unknown_app.status_code == unknown_org.status_code == 401
    assert bad_signature.json() == unknown_app.json() == unknown_org.json()
    assert error_code(bad_signature) == "invalid_signature"
    assert Event.objects.count() == 0


def test_ids_are_case_sensitive(signed_post, app):
    path = f"/v1/ingest/{app.organization.public_id}/{app.public_id.upper()}"

    assert signed_post(app, make_batch(1), path=path).status_code == 401


def test_a_missing_signature_is_a_401(client, app):
    response = client.post(
        f"/v1/ingest/{app.organization.public_id}/{app.public_id}",
        orjson.dumps(make_batch(1)),
        content_type="application/json",
        HTTP_X_TIMESTAMP=str(int(time.time())),
    )

    assert response.status_code == 401
    assert error_code(response) == "missing_signature"
    assert response["WWW-Authenticate"] == "HMAC-SHA256"


@pytest.mark.parametrize("timestamp", ["", "soon", "1" * 5000, "17.5"])
def test_an_unreadable_timestamp_is_a_401(signed_post, app, timestamp):
    response = signed_post(app, make_batch(1), headers={"X-Timestamp": timestamp})

    assert response.status_code == 401


def test_a_body_changed_after_signing_is_refused(client, app, secret):
    from telemetry.auth import sign

    timestamp, nonce = str(int(time.time())), str(uuid.uuid4())
    signed = orjson.dumps(make_batch(1))
    response = client.post(
        f"/v1/ingest/{app.organization.public_id}/{app.public_id}",
        signed + b" ",
        content_type="application/json",
        HTTP_X_TIMESTAMP=timestamp,
        HTTP_X_NONCE=nonce,
        HTTP_X_SIGNATURE=sign(secret, timestamp, signed, nonce),
    )

    assert response.status_code == 401


def test_a_revoked_credential_stops_working_at_once(signed_post, app, secret):
    from organizations.services import revoke_credential

    assert signed_post(app, make_batch(1)).status_code == 200  # now cached
    issued = rotate_credentials(app)
    revoke_credential(app.credentials.get(revoked_at__isnull=True, pk__lt=issued.credential.pk))

    assert signed_post(app, make_batch(1), key=secret).status_code == 401
    assert signed_post(app, make_batch(1), key=issued.secret).status_code == 200


# --- 403 --------------------------------------------------------------------------------


# A few seconds past the limit: the signing second and the checking second may differ.
@pytest.mark.parametrize("offset", [-605, 605, -100_000])
def test_a_timestamp_outside_the_window_is_a_403(signed_post, app, offset):
    response = signed_post(app, make_batch(1), timestamp=int(time.time()) + offset)

    assert response.status_code == 403
    assert error_code(response) == "timestamp_out_of_range"


def test_a_timestamp_inside_the_window_is_fine(signed_post, app):
    assert signed_post(app, make_batch(1), timestamp=int(time.time()) - 590).status_code == 200


@pytest.mark.parametrize("target", ["app", "organization"])
def test_a_disabled_app_or_organization_is_a_403(signed_post, app, target):
    owner = app if target == "app" else app.organization
    owner.is_active = False
    owner.save()
    forget_cached_app(app)

    response = signed_post(app, make_batch(1))

    assert response.status_code == 403
    assert error_code(response) == "app_disabled"


# --- 409 --------------------------------------------------------------------------------


def test_a_reused_nonce_is_a_409(signed_post, app):
    nonce = str(uuid.uuid4())
    assert signed_post(app, make_batch(1), nonce=nonce).status_code == 200

    replay = signed_post(app, make_batch(1), nonce=nonce)

    assert replay.status_code == 409
    assert error_code(replay) == "nonce_reused"
    assert Event.objects.count() == 1


def test_the_same_nonce_may_be_used_by_another_app(signed_post, app, org):
    from tests.factories import make_app

    other, credentials = make_app(org, name="other")
    nonce = str(uuid.uuid4())

    assert signed_post(app, make_batch(1), nonce=nonce).status_code == 200
    assert signed_post(other, make_batch(1), nonce=nonce, key=credentials.secret).status_code == 200


def test_an_expired_nonce_record_does_not_block_a_fresh_use(app):
    from telemetry.auth import remember_nonce

    then = time.time() - 3600
    assert remember_nonce(app.pk, "n-1", request_time=int(then), now=then)
    assert remember_nonce(app.pk, "n-1", request_time=int(time.time()))
    assert not remember_nonce(app.pk, "n-1", request_time=int(time.time()))


# --- 413 --------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413(signed_post, app, settings):
    settings.CLACKS_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    response = signed_post(app, make_batch(10))

    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"


def test_a_gzip_bomb_is_a_413(signed_post, app, settings):
    settings.CLACKS_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    bomb = gzip.compress(b'{"events":[' + b" " * (10 * 1024 * 1024) + b"]}")
    assert len(bomb) < 64 * 1024

    response = signed_post(app, bomb, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413


# --- Every response --------------------------------------------------------------------


def test_every_response_carries_the_overhead_header(client, db):
    for path in ["/no-such-page", "/v1/ingest/a/b", "/live", "/static/css/clacks.css"]:
        response = client.get(path)
        assert response["X-Clacks-Overhead"] == OVERHEAD, path


def test_ingest_answers_json_whatever_accept_says(signed_post, app):
    response = signed_post(app, b"{bad", headers={"Accept": "text/html"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_get_on_the_ingest_url_is_a_json_405(client, app):
    response = client.get(f"/v1/ingest/{app.organization.public_id}/{app.public_id}")

    assert response.status_code == 405
    assert error_code(response) == "method_not_allowed"
