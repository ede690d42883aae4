"""Whatever arrives, the ingest endpoint answers with a 2xx or 4xx, never a 5xx."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from telemetry.ingest import MAX_DATA_DEPTH
from telemetry.models import Event
from tests.factories import make_batch, make_event
from tests.signing import ingest_path, signed_headers

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

EVENT_PATHS = [
    ("schema_version",), ("event_id",), ("timestamp",), ("user_id",), ("session_id",),
    ("service",), ("service", "name"), ("service", "version"), ("service", "language"),
    ("environment",), ("environment", "os"), ("environment", "ci"), ("environment", "arch"),
    ("event",), ("event", "type"), ("event", "category"), ("event", "data"),
    ("metadata",), ("metadata", "batch_size"), ("metadata", "transmission_timestamp"),
]


@st.composite
def mangled_events(draw):
    """An SDK-shaped event with a few fields replaced by arbitrary JSON."""
    event = make_event()
    for path in draw(st.lists(st.sampled_from(EVENT_PATHS), max_size=3)):
        target = event
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                break
            target = target[key]
        else:
            target[path[-1]] = draw(json_values)
    return event


def to_json(value) -> bytes:
    # The stdlib writes integers of any size and escapes lone surrogates: both worth sending.
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(to_json),
    st.lists(mangled_events(), min_size=0, max_size=5).map(lambda events: to_json({"events": events})),
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
extra_headers = st.dictionaries(
    st.sampled_from(["HTTP_X_BATCH_SIZE", "HTTP_X_TIMESTAMP", "HTTP_X_NONCE", "HTTP_AUTHORIZATION",
                     "HTTP_CONTENT_ENCODING", "HTTP_DNT", "HTTP_X_SIGNATURE", "CONTENT_TYPE"]),
    header_values,
    max_size=3,
)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, headers=extra_headers, sign_it=st.booleans())
def test_random_bodies_and_headers_never_get_a_5xx(client, app, secret, body, headers, sign_it):
    kwargs = signed_headers(secret, body) if sign_it else {}
    kwargs.update(headers)
    kwargs.setdefault("CONTENT_TYPE", "application/json")

    response = client.generic("POST", ingest_path(app), body, **kwargs)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert isinstance(response.json()["error"]["code"], str)


# --- Path ids and nesting depth ----------------------------------------------------------

UNKNOWN_APP = {"error": {"code": "invalid_signature", "message": "Invalid signature or unknown application."}}
# Bytes no issued id holds: NUL and the other controls, DEL, and bytes of non-ASCII
# text (alone, some are not even UTF-8). "/" would change the route, not the id.
odd_bytes = st.sampled_from([0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F, 0x20, 0x7F, 0x80, 0xC3, 0xA9, 0xE2, 0xFF])
id_bytes = st.binary(max_size=80).map(lambda raw: raw.replace(b"/", b""))


@st.composite
def odd_ids(draw, real: str) -> str:
    """A path segment: the real id or arbitrary bytes, with at least one odd byte
    somewhere, percent-encoded as a client sends it."""
    base = draw(st.sampled_from([real.encode(), b""])) or draw(id_bytes)
    at = draw(st.integers(0, len(base)))
    raw = base[:at] + bytes([draw(odd_bytes)]) + base[at:]
    return quote(raw, safe="")


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), which=st.sampled_from(["org", "app", "both"]))
def test_path_ids_with_nul_control_or_non_ascii_bytes_get_the_unknown_app_answer(client, app, secret, data, which):
    org_id, app_id = app.organization.public_id, app.public_id
    if which in ("org", "both"):
        org_id = data.draw(odd_ids(org_id), label="org_id")
    if which in ("app", "both"):
        app_id = data.draw(odd_ids(app_id), label="app_id")
    body = to_json(make_batch(1))

    response = client.generic(
        "POST", f"/v1/ingest/{org_id}/{app_id}", body, content_type="application/json", **signed_headers(secret, body)
    )

    assert response.status_code == 401, response.content
    assert response.json() == UNKNOWN_APP


def nested(depth: int, kinds: str) -> str:
    """JSON text nesting `depth` lists or objects (kinds cycles through "[" and "{"),
    written as text: Python's encoders cannot write some of these depths."""
    opening, closing = [], []
    for level in range(depth):
        if kinds[level % len(kinds)] == "[":
            opening.append('["x",')
            closing.append("]")
        else:
            opening.append('{"k":')
            closing.append("}")
    return "".join(opening) + "1" + "".join(reversed(closing))


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.one_of(st.integers(0, 2000), st.sampled_from([MAX_DATA_DEPTH, MAX_DATA_DEPTH + 1, 1021, 1024, 2000])),
    kinds=st.sampled_from(["[", "{", "[{", "{[["]),
    route=st.sampled_from(["ingest", "batch"]),
)
def test_event_data_of_any_depth_is_stored_or_rejected_alone(client, app, secret, token, depth, kinds, route):
    deep, plain = make_event(), make_event()
    deep["event"]["data"] = "DEEP"
    body = to_json({"events": [deep, plain]}).replace(b'"DEEP"', nested(depth, kinds).encode())
    path, extra = ingest_path(app), signed_headers(secret, body)
    if route == "batch":
        path, extra["HTTP_AUTHORIZATION"] = "/v1/events/batch", f"Bearer {token}"

    response = client.generic("POST", path, body, content_type="application/json", **extra)

    sent = [deep["event_id"], plain["event_id"]]
    stored = {str(event_id) for event_id in Event.objects.filter(event_id__in=sent).values_list("event_id", flat=True)}
    if depth <= MAX_DATA_DEPTH:
        assert response.status_code == 200, response.content
        assert stored == set(sent)
    else:
        assert response.status_code == 207, response.content
        assert response.json()["errors"] == [
            {
                "event_id": deep["event_id"],
                "error": "invalid_schema",
                "message": f"event.data nests deeper than {MAX_DATA_DEPTH} levels.",
            }
        ]
        assert stored == {plain["event_id"]}
