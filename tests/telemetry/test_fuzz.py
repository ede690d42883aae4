"""Whatever arrives, the ingest endpoint answers with a 2xx or 4xx, never a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from tests.factories import make_event
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
