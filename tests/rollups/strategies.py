"""Hypothesis strategies for SDK events whose fields test the segmented rollups:
values around the part lengths of telemetry.rollups (PART_LENGTHS), values
holding the part separator, and event data of every JSON shape ingest accepts.

Numbers are what ingest's JSON parser gives: orjson reads integers from i64 to
u64, reads larger ones as floats, and refuses a number that overflows a double
(1e400) along with the whole body, so the largest numbers an event can carry are
u64, about 1.8e308 and the floats that integers beyond u64 become.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from hypothesis import strategies as st

from telemetry import rollups
from tests.factories import iso, make_event

SEP = rollups.SEP

# Number literals as they could appear in a body, read the way ingest reads them.
NUMBER_LITERALS = [
    b"0", b"-0", b"-0.0", b"2.0", b"2.5", b"-1.0", b"1E3", b"2.5e0", b"1.0000000000000000001",
    b"2147483647", b"2147483647.0", b"2147483648", b"-2147483648", b"-2147483648.0", b"-2147483649",
    b"9223372036854775807", b"-9223372036854775808", b"-9223372036854775809", b"18446744073709551615",
    b"18446744073709551616", b"123456789012345678901234567890", b"1e308", b"-1e308",
    b"1.7976931348623157e308", b"5e-324", b"1e-400",
]  # fmt: skip
numbers = (
    st.sampled_from(NUMBER_LITERALS).map(orjson.loads)
    | st.integers(min_value=-(2**31) - 2, max_value=2**31 + 1)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-300, max_value=300).map(float)
)
# Text a JSON string can hold once parsed: no lone surrogates (orjson refuses
# them); NUL is refused by validation, so event fields and data never hold it.
short_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=6)


def long_text(min_size: int, max_size: int):
    """Text about as long as a part, with separators and multi-byte characters
    where a cut may fall."""
    return st.text(st.sampled_from(["a", "b", SEP, "é", "😀", " "]), min_size=min_size, max_size=max_size)


scalars = st.none() | st.booleans() | numbers | short_text
# Integers inside lists and objects too stay in what orjson reads as integers (i64 to u64).
exit_codes = scalars | st.lists(numbers, max_size=2) | st.dictionaries(short_text, numbers, max_size=1)
flag_items = (
    st.sampled_from(["-v", "--release", "-v", "--x" + SEP + "y", ""])
    | short_text
    | long_text(60, 70)
    | st.none() | st.booleans() | numbers
    | st.lists(short_text, max_size=2)
)  # fmt: skip
flags = (
    st.lists(flag_items, max_size=6)
    | st.lists(flag_items, min_size=30, max_size=40)  # past the 32 flags read, with duplicates
    | scalars
    | st.dictionaries(short_text, short_text, max_size=2)
)
commands = st.sampled_from(["build", "test", "a" + SEP + "b"]) | scalars | long_text(120, 210)
command_data = st.fixed_dictionaries(
    {},
    optional={
        "command": commands,
        "success": st.booleans() | scalars,
        "duration_ms": st.integers(min_value=0, max_value=5000) | numbers | scalars,
        "exit_code": exit_codes,
        "flags": flags,
    },
)
data = command_data | scalars | st.lists(scalars, max_size=3)


def field(max_size: int, common: list[str]):
    """An event field up to its column's length: common values, short text,
    or long text around the part lengths."""
    return st.sampled_from(common) | short_text | long_text(60, max_size)


@st.composite
def events(draw, *, now: datetime, hours: int = 60, users: int = 4) -> dict:
    """An SDK event with hostile fields, within `hours` before `now`."""
    environment = {
        "os": draw(field(100, ["linux", "windows"])),
        "os_version": draw(field(100, ["6.1", "11", ""])),
        "arch": draw(field(100, ["x86_64", "aarch64", ""])),
    }
    ci = draw(st.sampled_from([True, False, None]))
    if ci is not None:
        environment["ci"] = ci
    event_type = draw(st.sampled_from([rollups.COMMAND_EVENT_TYPE] * 3 + ["feature_used"]) | long_text(1, 200))
    body = {"type": event_type, "data": draw(data), "category": draw(field(200, ["usage", ""]))}
    when = now - timedelta(hours=draw(st.integers(0, hours)), minutes=draw(st.integers(0, 59)))
    event = make_event(
        timestamp=iso(when),
        user_id=f"client_{draw(st.integers(0, users - 1))}",
        service={"name": "my-cli", "version": draw(field(100, ["1.2.0", "1.3.0-rc.1"]).filter(bool)),
                 "language": "rust"},
        environment=environment,
        event=body,
    )  # fmt: skip
    # What ingest gets after parsing the body.
    return orjson.loads(orjson.dumps(event))
