"""Requests no SDK sends, answered without a 5xx: odd path ids, event data nested
past what the server stores, and HMAC secrets the server's keys cannot read."""

from __future__ import annotations

import logging

import orjson
import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given, settings as hypothesis_settings, strategies as st

from organizations.services import issue_credential
from telemetry import ingest, lifecycle, periods
from telemetry.errors import IngestError
from telemetry.ingest import MAX_DATA_DEPTH
from telemetry.models import Event
from tests.factories import make_batch, make_event
from tests.telemetry.test_fuzz import UNKNOWN_APP, nested

# --- Path ids ------------------------------------------------------------------------------


ODD_SEGMENTS = ["%00", "org%00", "%01", "%0A", "%1F", "%20", "%7F", "%C3%A9", "%E2%80%8B", "a" * 65]


@pytest.mark.parametrize("segment", ODD_SEGMENTS)
@pytest.mark.parametrize("which", ["org", "app"])
def test_an_id_no_app_can_have_gets_the_unknown_app_answer_without_a_lookup(signed_post, app, segment, which):
    org_id, app_id = app.organization.public_id, app.public_id
    if which == "org":
        org_id += segment
    else:
        app_id += segment

    with CaptureQueriesContext(connection) as queries:
        response = signed_post(app, make_batch(1), path=f"/v1/ingest/{org_id}/{app_id}")

    assert response.status_code == 401
    assert response.json() == UNKNOWN_APP
    assert not [query for query in queries.captured_queries if "organizations_app" in query["sql"]]


@pytest.mark.parametrize("segment", ["%FF", "%ED%A0%80", "%C3"])
def test_bytes_that_are_not_utf8_stay_percent_escapes_and_name_no_app(signed_post, app, segment):
    # Django keeps undecodable bytes as the escapes they came in: printable text.
    path = f"/v1/ingest/{app.organization.public_id}/{app.public_id}{segment}"

    response = signed_post(app, make_batch(1), path=path)

    assert response.status_code == 401
    assert response.json() == UNKNOWN_APP


def test_an_id_of_the_longest_issued_length_is_still_looked_up(signed_post, app):
    app.public_id = "app_" + "f" * 60  # 64 characters, the column's limit
    app.save(update_fields=["public_id"])

    assert signed_post(app, make_batch(1)).status_code == 200


# --- Nesting depth of event.data -------------------------------------------------------------


def deep_batch(*depths: int, kinds: str = "[{") -> tuple[bytes, list[str]]:
    """A batch with one event per depth, event.data nested that deep; and their ids."""
    events = [make_event(event={"type": "deep", "data": f"DEPTH-{index}"}) for index in range(len(depths))]
    body = orjson.dumps({"events": events})
    for index, depth in enumerate(depths):
        body = body.replace(f'"DEPTH-{index}"'.encode(), nested(depth, kinds).encode())
    return body, [event["event_id"] for event in events]


def stored_ids(app) -> set[str]:
    return {str(event_id) for event_id in Event.objects.filter(app=app).values_list("event_id", flat=True)}


def test_data_as_deep_as_allowed_is_stored_read_back_exported_and_shown(client, signed_post, app, alice):
    body, (event_id,) = deep_batch(MAX_DATA_DEPTH)

    assert signed_post(app, body).status_code == 200

    data = Event.objects.get(app=app).data  # read back with Python's json
    for _ in range(MAX_DATA_DEPTH):
        data = data[1] if isinstance(data, list) else data["k"]
    assert data == 1
    for name in ("jsonl", "csv"):
        export_format = lifecycle.EXPORT_FORMATS[name]
        everything = periods.TimeRange(None, None)
        exported = b"".join(lifecycle.export_events(app, everything, export_format=export_format))
        assert b'{"k":["x",' * 10 in exported.replace(b'""', b'"')  # CSV doubles the quotes
    client.force_login(alice)
    page = client.get(
        reverse(
            "dashboard:event_detail",
            kwargs={"org_id": app.organization.public_id, "app_id": app.public_id, "event_id": event_id},
        )
    )
    assert page.status_code == 200


@pytest.mark.parametrize("depth", [MAX_DATA_DEPTH + 1, 255, 600, 1021, 1024, 2_000, 100_000])
def test_data_nested_deeper_is_rejected_alone_and_the_rest_stored(signed_post, app, depth):
    body, (deep_id, shallow_id, fine_id) = deep_batch(depth, 3, MAX_DATA_DEPTH)

    response = signed_post(app, body)

    assert response.status_code == 207, response.content
    message = f"event.data nests deeper than {MAX_DATA_DEPTH} levels."
    assert response.json()["errors"] == [{"event_id": deep_id, "error": "invalid_schema", "message": message}]
    assert stored_ids(app) == {shallow_id, fine_id}


def test_every_event_nested_too_deep_is_a_400_with_each_rejection(signed_post, app):
    body, ids = deep_batch(300, 5_000)

    response = signed_post(app, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "all_events_rejected"
    assert [error["event_id"] for error in response.json()["errors"]] == ids


def test_a_deep_body_that_is_not_json_is_still_a_400(signed_post, app):
    body, _ = deep_batch(3_000, 1)
    outer, inner = body.rsplit(b'"x",', 1)  # the innermost list, 3,000 levels down
    broken_bodies = (
        body[:-1],
        body + b"x",
        b"]" + body,
        body.replace(b'["x",', b'["x",,', 1),
        outer + b'"x",,' + inner,
    )
    for broken in broken_bodies:
        response = signed_post(app, broken)

        assert response.status_code == 400, broken[:80]
        assert response.json()["error"]["code"] == "invalid_json"
    assert Event.objects.count() == 0


# The deep-body reader cuts at _CUT_DEPTH levels; with a cut of 3, arbitrary JSON
# text (and text that is almost JSON) exercises every way a cut can fall.
json_like = st.recursive(
    st.sampled_from(["1", '"a"', '"[{"', '"\\\\"', '"\\"]"', "null", "-2.5e3", '"é"']),
    lambda inner: st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
    | st.lists(inner, max_size=3).map(lambda items: "{" + ",".join(f'"k{i}":{v}' for i, v in enumerate(items)) + "}"),
    max_leaves=30,
)


@st.composite
def almost_json(draw) -> str:
    text = draw(json_like)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list('[]{}",:\\1'))) + text[at + draw(st.integers(0, 1)) :]
    return text


def cut(value, depth: int = 0, *, every: int):
    if not isinstance(value, (list, dict)):
        return value
    if depth and depth % every == 0:
        return None
    if isinstance(value, list):
        return [cut(item, depth + 1, every=every) for item in value]
    return {key: cut(item, depth + 1, every=every) for key, item in value.items()}


@hypothesis_settings(max_examples=500, deadline=None)
@given(text=almost_json())
def test_the_deep_body_reader_reads_json_as_orjson_does_and_refuses_the_rest(text):
    original, ingest._CUT_DEPTH = ingest._CUT_DEPTH, 3
    try:
        try:
            expected = cut(orjson.loads(text), every=3)
        except orjson.JSONDecodeError:
            expected = "refused"
        try:
            body_with_holes, parts, _ = ingest._cut_deep_parts(text.encode())
            orjson.loads(b"[" + b",".join(parts) + b"]")
            got = orjson.loads(body_with_holes)
        except ValueError:  # orjson.JSONDecodeError too
            got = "refused"
    finally:
        ingest._CUT_DEPTH = original

    assert got == expected


def test_a_broken_body_is_told_what_is_wrong_deep_or_not():
    with pytest.raises(IngestError) as deep:
        ingest.parse_batch(b'{"events":[' + b"[" * 2_000 + b'"', declared_size=None)
    with pytest.raises(IngestError) as shallow:
        ingest.parse_batch(b'{"events":["[[[', declared_size=None)

    assert deep.value.code == shallow.value.code == "invalid_json"
    # orjson stopped at 1,024 levels, before the problem: the reader tells it.
    assert deep.value.message == "The body is not valid JSON: a string that never ends."
    # orjson's own answer, which knows where.
    with pytest.raises(orjson.JSONDecodeError) as orjsons:
        orjson.loads(b'{"events":["[[[')
    assert shallow.value.message == f"The body is not valid JSON: {orjsons.value.msg}."


# --- Secrets the server cannot read -------------------------------------------------------------


def test_an_undecryptable_secret_is_a_503_to_retry_with_one_log_line(signed_post, app, secret, settings, caplog):
    settings.CLACKS_SECRETS_KEYS = [Fernet.generate_key().decode()]  # the old key is gone

    with caplog.at_level(logging.INFO):
        response = signed_post(app, make_batch(2))

    assert response.status_code == 503
    assert response.json() == {
        "error": {
            "code": "secrets_unreadable",
            "message": "The server cannot read this application's credentials; keep the events and try again later.",
        },
        "retry_after": 60,
    }
    assert response["Retry-After"] == "60"
    assert response["X-Clacks-Overhead"] == "GNU Terry Pratchett"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in errors] == [
        f"ingest for {app.public_id} answers 503: An HMAC secret cannot be decrypted: "
        "CLACKS_SECRETS_KEY (or SECRET_KEY) changed without keeping the old key"
    ]
    assert not [record for record in caplog.records if record.exc_info]
    assert secret not in caplog.text
    assert Event.objects.count() == 0


def test_keys_that_are_not_fernet_keys_are_a_503_too(signed_post, app, settings):
    settings.CLACKS_SECRETS_KEYS = ["not-a-fernet-key"]

    response = signed_post(app, make_batch(1))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "secrets_unreadable"


def test_a_readable_secret_still_signs_when_another_cannot_be_read(signed_post, app, secret, settings):
    settings.CLACKS_SECRETS_KEYS = [Fernet.generate_key().decode()]
    readable = issue_credential(app).secret  # encrypted with the new key; the first one is not readable now

    assert signed_post(app, make_batch(1), key=readable).status_code == 200
    assert signed_post(app, make_batch(1), key=secret).status_code == 503  # may be signed with the unreadable one
