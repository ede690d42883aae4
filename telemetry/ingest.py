"""Ingest domain logic: parse a batch, validate each event, store the good ones at once.

Validation is pure (events in, rows and rejections out). Storing is
telemetry.storage's: one statement per batch that skips event ids the app
already has and reports how many rows were new.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

import orjson

from telemetry import storage
from telemetry.errors import IngestError
from telemetry.models import Event

MAX_EVENTS_PER_BATCH = 1000  # the SDK's maximum (docs/protocol.md, Body)
MAX_EVENT_DATA_BYTES = 64 * 1024
# How deep event.data may nest, [] and {} one level each ({"a": [1]} is 2); deeper
# data is rejected on its own as invalid_schema (README, Ingest API). The limit is
# the tightest the data meets: orjson.dumps writes it when it is stored and
# exported, and refuses 255 levels or more, which is also how validate_event
# enforces it, at no cost to other events (tests/telemetry/test_hostile_input.py
# holds both sides of the limit, so an orjson that moves it fails them). The rest
# allow more: orjson.loads 1,024 for a whole body (_loads_deep reads deeper
# bodies), Python's json some 990 (reading it back), SQLite's JSON 2,000,
# PostgreSQL's jsonb some 14,000 (default max_stack_depth).
MAX_DATA_DEPTH = 254
MAX_FUTURE_SKEW = timedelta(hours=1)
NIL_UUID = "00000000-0000-0000-0000-000000000000"

# RFC 3339 date-time. The SDK sends up to 9 fractional digits (nanoseconds);
# Python keeps microseconds, so extra digits are dropped, never refused.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?([Zz]|[+-]\d{2}:\d{2})\Z"
)
# A NUL escape in serialized JSON that is not itself an escaped backslash.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# A UUID as str(uuid.UUID(...)) writes it, which is also how the SDK sends it.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# For reading a body nested deeper than orjson reads (_cut_deep_parts): runs of
# brackets, and what lies between them, strings included, in one piece each;
# a lone quote is a string that never ends.
_JSON_STRUCTURE = re.compile(rb'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")++|[\[{]+|[\]}]+|"', re.DOTALL)
_ORJSON_MAX_DEPTH = 1024  # orjson.loads refuses a document nested deeper
# _loads_deep reads a deep body in parts nested at most this deep. More than
# MAX_DATA_DEPTH + 4 (the levels around event.data), so any event it cuts is too deep.
_CUT_DEPTH = 512


# Column limits come from the model, so the check and the table cannot drift apart.
LIMITS = {
    name: Event._meta.get_field(name).max_length
    for name in storage.COLUMNS
    if Event._meta.get_field(name).get_internal_type() == "CharField"
}


class EventRejected(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class ValidatedBatch:
    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def parse_batch(body: bytes, *, declared_size: str | None) -> list:
    """The `events` list of a request body, or IngestError(400)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        payload = _loads_deep(body, exc)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise IngestError(400, "invalid_batch", 'The body must be a JSON object {"events": [...]}.')
    events = payload["events"]
    if not 1 <= len(events) <= MAX_EVENTS_PER_BATCH:
        raise IngestError(
            400, "invalid_batch_size", f"A batch holds 1 to {MAX_EVENTS_PER_BATCH} events; got {len(events)}."
        )
    if declared_size is not None and declared_size.strip() != str(len(events)):
        raise IngestError(
            400,
            "batch_size_mismatch",
            f"X-Batch-Size says {declared_size.strip()[:20]!r} but the body holds {len(events)} events.",
        )
    return events


def _loads_deep(body: bytes, error: orjson.JSONDecodeError):
    """What orjson.loads would read from a body nested deeper than it reads, or
    IngestError(400) if the body is not valid JSON.

    One event nested too deep must not make its whole batch unreadable: the body
    is read with every part nested _CUT_DEPTH levels deep replaced by null (see
    _cut_deep_parts). The event that held such a part still nests deeper than
    MAX_DATA_DEPTH, so validate_event rejects it alone, and the others are
    stored. Only bodies orjson refused come here."""
    try:
        body_with_holes, parts, deepest = _cut_deep_parts(body)
    except ValueError as problem:
        problem_text, deepest = problem.args
        if deepest > _ORJSON_MAX_DEPTH:  # orjson stopped at the depth, before the problem
            raise IngestError(400, "invalid_json", f"The body is not valid JSON: {problem_text}.") from None
    if deepest <= _ORJSON_MAX_DEPTH:  # not a matter of depth: orjson's answer stands
        raise IngestError(400, "invalid_json", f"The body is not valid JSON: {error.msg}.") from None
    try:
        # Each part nests at most _CUT_DEPTH levels; in one list, one level more.
        # The parts are read to check they are JSON; their values are not needed.
        orjson.loads(b"[" + b",".join(parts) + b"]")
        return orjson.loads(body_with_holes)
    except orjson.JSONDecodeError:
        raise IngestError(400, "invalid_json", "The body is not valid JSON.") from None


def _cut_deep_parts(body: bytes) -> tuple[bytes, list[bytes], int]:
    """(the body with null in place of each container that has a positive multiple
    of _CUT_DEPTH containers around it, those containers with null in place of the
    same in them, the deepest nesting seen). Every piece nests at most _CUT_DEPTH
    levels, and the body is JSON exactly when every piece is. ValueError(what is
    wrong, the deepest nesting seen) when the brackets or quotes do not pair up.

    One pass over the body's runs of brackets, skipping what lies between them
    (strings hold brackets too): that text is left for orjson to check."""
    parts: list[bytes] = []
    open_parts: list[list[bytes]] = [[]]  # the chunks of each piece still open; [0] is the body
    copied = [0]  # for each open piece, where its next chunk starts
    depth = deepest = 0
    for match in _JSON_STRUCTURE.finditer(body):
        start, end = match.span()
        count = end - start
        first = body[start]
        if first not in b"[]{}":
            if first == 0x22 and count == 1:  # '"'
                raise ValueError("a string that never ends", deepest)
            continue
        if first in b"[{":
            # The opener at start + i has depth + i containers around it.
            i = -depth % _CUT_DEPTH
            if depth + i == 0:
                i = _CUT_DEPTH  # the body itself is not cut out
            while i < count:
                position = start + i
                open_parts[-1] += (body[copied[-1] : position], b"null")
                open_parts.append([])
                copied.append(position)
                i += _CUT_DEPTH
            depth += count
            deepest = max(deepest, depth)
        else:
            if count > depth:
                raise ValueError("a closing bracket without its opening one", deepest)
            # The closer at start + j ends the container with depth - 1 - j around it.
            j = (depth - 1) % _CUT_DEPTH
            while j < count and depth - 1 - j > 0:
                position = start + j + 1
                chunks = open_parts.pop()
                chunks.append(body[copied.pop() : position])
                parts.append(b"".join(chunks))
                copied[-1] = position
                j += _CUT_DEPTH
            depth -= count
    if depth:
        raise ValueError("an opening bracket without its closing one", deepest)
    return b"".join(open_parts[0]) + body[copied[0] :], parts, deepest


def parse_rfc3339(value) -> datetime | None:
    """An aware UTC datetime, or None if the value is not RFC 3339 text."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    try:
        # Once the shape is known, Python's own parser (in C) reads it as _from_parts
        # does, extra fractional digits dropped too, in a fifth of the time. Read by
        # hand, an event's two timestamps were over half of its validation.
        moment = datetime.fromisoformat(value)
    except ValueError:
        # It refuses a lower-case "z" and digits outside ASCII (which \d matches);
        # a date that does not exist fails there as well.
        return _from_parts(match)
    try:
        return moment.astimezone(dt_timezone.utc)
    except OverflowError:  # year 1 or 9999 pushed out of range by the offset
        return None


def _from_parts(match: re.Match) -> datetime | None:
    """parse_rfc3339 read from the regular expression's groups, one number at a time."""
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros)
        if offset in ("Z", "z"):
            tz = dt_timezone.utc
        else:
            sign = 1 if offset[0] == "+" else -1
            tz = dt_timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
        return moment.replace(tzinfo=tz).astimezone(dt_timezone.utc)
    except (ValueError, OverflowError):  # month 13, second 61, year 0 after the offset
        return None


def _text(container: dict, key: str, *, column: str, required: bool, path: str) -> str:
    """A string field: '' when optional and absent or null (the SDK omits empty ones)."""
    value = container.get(key)
    if value is None:
        if required:
            raise EventRejected("invalid_schema", f"{path} is required.")
        return ""
    if not isinstance(value, str):
        raise EventRejected("invalid_schema", f"{path} must be a string.")
    if "\x00" in value:
        raise EventRejected("invalid_schema", f"{path} must not contain NUL characters.")
    if len(value) > LIMITS[column]:
        raise EventRejected("invalid_schema", f"{path} is longer than {LIMITS[column]} characters.")
    return value


def _object(container: dict, key: str, path: str) -> dict:
    value = container.get(key)
    if not isinstance(value, dict):
        raise EventRejected("invalid_schema", f"{path} must be an object.")
    return value


def _count(container: dict, key: str, path: str) -> int:
    value = container.get(key)
    # bool is an int in Python but not a number in JSON.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise EventRejected("invalid_schema", f"{path} must be a whole number.")
    return value


_TOO_DEEP = f"event.data nests deeper than {MAX_DATA_DEPTH} levels."


def validate_event(event, *, now: datetime) -> dict:
    """One event as a row to store, or EventRejected (docs/protocol.md, Per-event rules)."""
    if not isinstance(event, dict):
        raise EventRejected("invalid_schema", "An event must be a JSON object.")
    schema_version = event.get("schema_version")
    if not isinstance(schema_version, str):
        raise EventRejected("invalid_schema", "schema_version is required.")
    if not schema_version.startswith("1."):
        raise EventRejected("unsupported_schema", "Only schema version 1.x is supported.")
    schema_version = _text(event, "schema_version", column="schema_version", required=True, path="schema_version")

    event_id = _canonical_uuid(event.get("event_id"))
    if event_id is None:
        raise EventRejected("invalid_schema", "event_id must be a UUID.")

    timestamp = parse_rfc3339(event.get("timestamp"))
    if timestamp is None:
        raise EventRejected("invalid_schema", "timestamp must be an RFC 3339 date-time.")

    service = _object(event, "service", "service")
    environment = _object(event, "environment", "environment")
    body = _object(event, "event", "event")
    metadata = _object(event, "metadata", "metadata")

    row = {
        "event_id": event_id,
        "timestamp": timestamp,
        "schema_version": schema_version,
        "service_name": _text(service, "name", column="service_name", required=True, path="service.name"),
        "service_version": _text(service, "version", column="service_version", required=True, path="service.version"),
        "service_language": _text(
            service, "language", column="service_language", required=True, path="service.language"
        ),
        "service_language_version": _text(
            service, "language_version", column="service_language_version", required=False,
            path="service.language_version",
        ),
        "user_id": _text(event, "user_id", column="user_id", required=True, path="user_id"),
        "session_id": _text(event, "session_id", column="session_id", required=False, path="session_id"),
        "os": _text(environment, "os", column="os", required=True, path="environment.os"),
        "os_version": _text(environment, "os_version", column="os_version", required=False, path="environment.os_version"),
        "arch": _text(environment, "arch", column="arch", required=False, path="environment.arch"),
        "shell": _text(environment, "shell", column="shell", required=False, path="environment.shell"),
        "event_type": _text(body, "type", column="event_type", required=True, path="event.type"),
        "category": _text(body, "category", column="category", required=False, path="event.category"),
        "sdk_version": _text(metadata, "sdk_version", column="sdk_version", required=True, path="metadata.sdk_version"),
    }
    ci = environment.get("ci")
    if ci is not None and not isinstance(ci, bool):
        raise EventRejected("invalid_schema", "environment.ci must be true or false.")
    row["ci"] = ci
    if parse_rfc3339(metadata.get("transmission_timestamp")) is None:
        raise EventRejected("invalid_schema", "metadata.transmission_timestamp must be an RFC 3339 date-time.")
    _count(metadata, "batch_size", "metadata.batch_size")
    _count(metadata, "retry_count", "metadata.retry_count")

    for name in ("service_name", "service_version", "event_type"):
        if not row[name]:
            raise EventRejected("invalid_schema", f"{name.replace('_', '.', 1)} must not be empty.")
    if not row["user_id"].startswith("client_"):
        raise EventRejected("invalid_schema", "user_id must be an anonymous id starting with 'client_'.")

    if "data" not in body:
        raise EventRejected("invalid_schema", "event.data is required.")
    try:
        data = orjson.dumps(body["data"])
    except TypeError:  # more than MAX_DATA_DEPTH levels: orjson refuses them
        raise EventRejected("invalid_schema", _TOO_DEEP) from None
    if len(data) > MAX_EVENT_DATA_BYTES:
        raise EventRejected("event_too_large", f"event.data is larger than {MAX_EVENT_DATA_BYTES} bytes.")
    # PostgreSQL's jsonb refuses \u0000. The substring test first: the expression
    # alone took longer than serializing the data.
    if b"\\u0000" in data and _JSON_NUL.search(data):
        raise EventRejected("invalid_schema", "event.data must not contain NUL characters.")
    row["data"] = data  # serialized once, embedded as is when stored
    row["data_value"] = body["data"]  # parsed, for the rollups

    if timestamp > now + MAX_FUTURE_SKEW:
        raise EventRejected("invalid_timestamp", "timestamp is more than 1 hour in the future.")
    return row


def validate_events(events: list, *, now: datetime) -> ValidatedBatch:
    batch = ValidatedBatch()
    for event in events:
        try:
            batch.rows.append(validate_event(event, now=now))
        except EventRejected as rejection:
            batch.errors.append(
                {"event_id": _error_event_id(event), "error": rejection.code, "message": rejection.message}
            )
    return batch


def _error_event_id(event) -> str:
    """The SDK decodes errors[].event_id as a UUID, so anything else becomes the nil UUID."""
    raw = event.get("event_id") if isinstance(event, dict) else None
    return _canonical_uuid(raw) or NIL_UUID


def _canonical_uuid(raw) -> str | None:
    """The UUID in its lower-case hyphenated form, or None if raw is not UUID text."""
    if not isinstance(raw, str):
        return None
    if _CANONICAL_UUID.match(raw):
        return raw  # already in that form: parsing and printing it back cost 2 us an event
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


@dataclass(frozen=True)
class IngestResult:
    accepted: int  # new events and duplicates
    duplicates: int
    errors: list[dict]  # the rejected events (docs/protocol.md, Responses)

    @property
    def status(self) -> int:
        return 207 if self.errors else 200

    def body(self) -> dict:
        if self.errors:
            return {
                "status": "partial",
                "accepted": self.accepted,
                "rejected": len(self.errors),
                "duplicates": self.duplicates,
                "message": f"{self.accepted} events accepted, {len(self.errors)} rejected.",
                "errors": self.errors,
            }
        return {
            "status": "success",
            "accepted": self.accepted,
            "rejected": 0,
            "duplicates": self.duplicates,
            # The SDK fails to decode a success body without a message (docs/protocol.md, Responses).
            "message": f"{self.accepted} events accepted.",
        }


def ingest_events(app_pk: int, events: list, *, now: datetime) -> IngestResult:
    """Validate and store a batch. Raises IngestError(400) when every event is rejected."""
    batch = validate_events(events, now=now)
    if not batch.rows:
        raise IngestError(
            400,
            "all_events_rejected",
            f"All {len(batch.errors)} events were rejected.",
            errors=batch.errors,
            extra={"accepted": 0, "rejected": len(batch.errors)},
        )
    inserted = storage.store_batch(app_pk, batch.rows, received_at=now)
    return IngestResult(accepted=len(batch.rows), duplicates=len(batch.rows) - inserted, errors=batch.errors)
