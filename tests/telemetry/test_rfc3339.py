"""telemetry.ingest.parse_rfc3339: event timestamps as aware UTC datetimes, or None."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from telemetry.ingest import _RFC3339, _from_parts, parse_rfc3339


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The SDK's nine fractional digits, cut (not rounded) to microseconds.
        ("2026-11-23T23:50:56.714992575Z", "2026-11-23T23:50:56.714992+00:00"),
        ("2026-11-23T23:50:56.7149999999Z", "2026-11-23T23:50:56.714999+00:00"),
        ("2026-11-23T23:50:56.123456789012Z", "2026-11-23T23:50:56.123456+00:00"),
        ("2026-11-23T23:50:56.1Z", "2026-11-23T23:50:56.100000+00:00"),
        ("2026-11-23T23:50:56Z", "2026-11-23T23:50:56+00:00"),
        # RFC 3339, section 5.6: "T" and "Z" may be lower case, and a space may separate.
        ("2026-11-23t23:50:56.5z", "2026-11-23T23:50:56.500000+00:00"),
        ("2026-11-23 23:50:56Z", "2026-11-23T23:50:56+00:00"),
        ("2026-11-24T01:50:56.123+02:00", "2026-11-23T23:50:56.123000+00:00"),
        ("2026-11-23T18:20:56-05:30", "2026-11-23T23:50:56+00:00"),
        ("2026-11-23T23:50:56-00:00", "2026-11-23T23:50:56+00:00"),
        ("0001-01-01T00:30:00+00:30", "0001-01-01T00:00:00+00:00"),
    ],
)
def test_it_reads_each_form_as_utc(text, expected):
    assert parse_rfc3339(text).isoformat() == expected


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30T10:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T23:50:60Z",
        "2026-11-23T23:50:56",  # no offset
        "2026-11-23T23:50:56+0200",
        "2026-11-23",
        "2026-11-23T23:50:56.Z",
        "2026-11-23T23:50:56,5Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
        "2026-11-23T23:50:56+24:00",
        "",
        None,
        1732003200,
    ],
)
def test_it_refuses_what_is_not_an_rfc3339_date_time(value):
    assert parse_rfc3339(value) is None


@st.composite
def rfc3339_shaped(draw) -> str:
    """Text of the shape _RFC3339 accepts, with numbers in and out of their ranges."""

    def number(low: int, high: int, width: int) -> str:
        kind = draw(st.integers(0, 19))
        if kind == 0:  # \d also matches digits outside ASCII
            return draw(st.text(st.characters(categories=["Nd"]), min_size=width, max_size=width))
        if kind == 1:
            low, high = 0, 10**width - 1
        return str(draw(st.integers(low, high))).zfill(width)

    text = (
        f"{number(1, 9999, 4)}-{number(1, 12, 2)}-{number(1, 31, 2)}{draw(st.sampled_from('Tt '))}"
        f"{number(0, 23, 2)}:{number(0, 59, 2)}:{number(0, 59, 2)}"
    )
    if draw(st.booleans()):
        text += "." + draw(st.text(st.sampled_from("0123456789"), min_size=1, max_size=12))
    if draw(st.booleans()):
        return text + draw(st.sampled_from("Zz"))
    return text + f"{draw(st.sampled_from('+-'))}{number(0, 23, 2)}:{number(0, 59, 2)}"


@given(rfc3339_shaped())
def test_it_reads_every_rfc3339_shaped_text_as_its_numbers_say(text):
    # parse_rfc3339 hands the text to datetime.fromisoformat; reading the numbers
    # one by one is the reference, so another Python's parser cannot drift from it.
    match = _RFC3339.match(text)
    assert match is not None
    expected = _from_parts(match)
    parsed = parse_rfc3339(text)
    assert (parsed and parsed.isoformat()) == (expected and expected.isoformat())
