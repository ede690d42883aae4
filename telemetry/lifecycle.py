"""Getting an app's events out (export) and deleting a user's events (erasure).

Erasure deletes through `delete_events()`, which hands each batch to
`storage.delete_events` (as retention does), so the pre-aggregated counts
lose exactly what the events table loses.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import orjson
from django.db.models import Count, Func, Q, TextField
from django.db.models.functions import Cast

from organizations.models import App, Organization
from organizations.services import record_audit
from telemetry import storage
from telemetry.databases import events_atomic, events_connection
from telemetry.periods import UTC, InvalidRange, TimeRange
from telemetry.ingest import parse_rfc3339
from telemetry.models import Event, EventQuerySet

logger = logging.getLogger(__name__)

# Rows fetched per query. Memory while exporting is bounded by one page of
# rows and its encoded text, whatever the number of events.
EXPORT_PAGE_SIZE = 2000
# Rows deleted per transaction: short transactions keep ingest writing while
# a large erasure runs, and a failure part-way loses nothing already done.
DELETE_BATCH_SIZE = 1000
# Batches whose keys one query collects; 20 batches of keys take a few MB.
DELETE_BATCHES_PER_SCAN = 20


class LifecycleError(InvalidRange):
    """Input a person can correct (a bad date, a blank user id); the message says how."""


# --- Date ranges -----------------------------------------------------------------


def parse_time_range(first: str | None, last: str | None) -> TimeRange:
    """A range from command-line text: a date (YYYY-MM-DD, whole UTC day, `last`
    included) or an RFC 3339 date-time (`last` then excluded)."""
    start = _parse_bound(first, name="--from", end=False)
    end = _parse_bound(last, name="--to", end=True)
    if start and end and end <= start:
        raise LifecycleError("The range is empty: --to is not after --from.")
    return TimeRange(start=start, end=end)


def _parse_bound(text: str | None, *, name: str, end: bool) -> datetime | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is not None:
        try:
            return datetime.combine(day + timedelta(days=1) if end else day, time.min, UTC)
        except OverflowError:  # 9999-12-31 has no next day
            raise LifecycleError(f"{name} {text!r} is too far in the future.") from None
    moment = parse_rfc3339(text)
    if moment is None:
        raise LifecycleError(f"{name} {text!r}: use a date (2026-11-30) or an RFC 3339 time (2026-11-30T12:00:00Z).")
    return moment


# --- Export -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFormat:
    name: str
    content_type: str
    extension: str


EXPORT_FORMATS = {
    "csv": ExportFormat("csv", "text/csv; charset=utf-8", "csv"),
    # No registered type for JSON Lines yet; ndjson's is the one tools recognise.
    "jsonl": ExportFormat("jsonl", "application/x-ndjson", "jsonl"),
}

# Header row of the CSV export, in column order. `data` is event.data as JSON text.
CSV_HEADER = (
    "event_id",
    "timestamp",
    "received_at",
    "schema_version",
    "service_name",
    "service_version",
    "service_language",
    "service_language_version",
    "user_id",
    "session_id",
    "os",
    "os_version",
    "arch",
    "ci",
    "shell",
    "event_type",
    "category",
    "sdk_version",
    "data",
)
# Event columns exported as they are, in CSV column order (between received_at and data).
_PLAIN_FIELDS = CSV_HEADER[3:-1]
# A spreadsheet runs a cell starting with one of these as a formula (OWASP,
# "CSV Injection"); event fields are written by clients, so they are untrusted.
_FORMULA_START = frozenset("=+-@\t\r")
_CI = _PLAIN_FIELDS.index("ci")


class _UtcText(Func):
    """A timestamptz as RFC 3339 text with six fractional digits, formatted by PostgreSQL.

    Django reads timestamptz through a pure-Python loader, the slowest part of
    an export when measured; the database formats it for almost nothing."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = TextField()


def events_in_range(app: App, time_range: TimeRange) -> EventQuerySet:
    events = Event.objects.for_app(app)
    if time_range.start is not None:
        events = events.filter(timestamp__gte=time_range.start)
    if time_range.end is not None:
        events = events.filter(timestamp__lt=time_range.end)
    return events


def count_events(app: App, time_range: TimeRange) -> int:
    return events_in_range(app, time_range).count()


def export_filename(app: App, time_range: TimeRange, export_format: ExportFormat) -> str:
    return f"{app.public_id}_{time_range.label()}.{export_format.extension}"


def export_events(
    app: App,
    time_range: TimeRange,
    *,
    export_format: ExportFormat,
    page_size: int = EXPORT_PAGE_SIZE,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The app's events in the range, oldest first, as UTF-8 chunks of CSV or
    JSON Lines, one chunk per page of rows; `on_page(n)` follows each page."""
    events = events_in_range(app, time_range).annotate(data_text=Cast("data", output_field=TextField()))
    key, event_id, received = "timestamp", "event_id", "received_at"
    if events_connection.vendor == "postgresql":
        events = events.annotate(
            timestamp_text=_UtcText("timestamp"),
            received_text=_UtcText("received_at"),
            event_id_text=Cast("event_id", output_field=TextField()),  # skips building UUID objects
        )
        key, event_id, received = "timestamp_text", "event_id_text", "received_text"
    fields = (event_id, received, *_PLAIN_FIELDS, "data_text")
    if export_format.name == "csv":
        yield _csv_line(CSV_HEADER)
    encode = _csv_chunk if export_format.name == "csv" else _jsonl_chunk
    for page in keyset_pages(events, fields=fields, page_size=page_size, key=key):
        yield encode(page)
        if on_page is not None:
            on_page(len(page))


def keyset_pages(
    events: EventQuerySet, *, fields: tuple[str, ...], page_size: int, key: str = "timestamp"
) -> Iterator[list[tuple]]:
    """Rows of (key, pk, *fields) in (timestamp, pk) order, a page at a time;
    `key` is the timestamp or an annotation of it as RFC 3339 text.

    Each page is one short query that starts where the last one stopped, on
    the (app, timestamp) index: no cursor or transaction stays open while a
    slow client downloads, and no page rereads what came before."""
    last: tuple[datetime, int] | None = None
    while True:
        page_query = events
        if last is not None:
            ts, pk = last
            # `timestamp >= ts` on its own is what lets the index range start at
            # the previous page's end; the OR only breaks ties within one instant.
            page_query = page_query.filter(timestamp__gte=ts).filter(Q(timestamp__gt=ts) | Q(pk__gt=pk))
        rows = list(page_query.order_by("timestamp", "pk").values_list(key, "pk", *fields)[:page_size])
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        ts = rows[-1][0]
        last = (ts if isinstance(ts, datetime) else parse_rfc3339(ts)), rows[-1][1]


def _iso(moment: datetime | str) -> str:
    """RFC 3339 in UTC, always six fractional digits and a Z, so every row has the same shape."""
    if isinstance(moment, str):  # already formatted by PostgreSQL (_UtcText)
        return moment
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _canonical_json(text: str) -> bytes:
    # jsonb hands back its own spacing and key order; sorted compact JSON makes
    # both databases export the same bytes (the SDK sorts event.data keys too).
    return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS)


def _csv_text(value: str) -> str:
    return "'" + value if value[:1] in _FORMULA_START else value


def _csv_line(values) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


def _csv_chunk(rows: list[tuple]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line ends
    for timestamp, _pk, event_id, received_at, *plain, data in rows:
        ci = plain[_CI]
        plain[_CI] = "" if ci is None else ("true" if ci else "false")
        writer.writerow(
            [
                str(event_id),
                _iso(timestamp),
                _iso(received_at),
                *[_csv_text(value) for value in plain],
                _csv_text(_canonical_json(data).decode()),
            ]
        )
    return buffer.getvalue().encode()


def _jsonl_chunk(rows: list[tuple]) -> bytes:
    return b"".join(orjson.dumps(_sdk_event(row)) + b"\n" for row in rows)


def _sdk_event(row: tuple) -> dict:
    """One stored event as the SDK sent it (docs/protocol.md, Event fields), empty optional
    fields omitted as the SDK does, plus `received_at`. The metadata fields
    the server does not keep (transmission time, batch size, retry count) are absent."""
    (
        timestamp, _pk, event_id, received_at, schema_version, service_name, service_version,
        service_language, service_language_version, user_id, session_id, os, os_version, arch, ci,
        shell, event_type, category, sdk_version, data,
    ) = row  # fmt: skip
    service = {"name": service_name, "version": service_version, "language": service_language}
    if service_language_version:
        service["language_version"] = service_language_version
    environment = {"os": os}
    if os_version:
        environment["os_version"] = os_version
    if arch:
        environment["arch"] = arch
    if ci is not None:
        environment["ci"] = ci
    if shell:
        environment["shell"] = shell
    body = {"type": event_type}
    if category:
        body["category"] = category
    body["data"] = orjson.Fragment(_canonical_json(data))
    event = {
        "schema_version": schema_version,
        "event_id": str(event_id),
        "timestamp": _iso(timestamp),
        "service": service,
        "user_id": user_id,
    }
    if session_id:
        event["session_id"] = session_id
    event["environment"] = environment
    event["event"] = body
    event["metadata"] = {"sdk_version": sdk_version}
    event["received_at"] = _iso(received_at)
    return event


def record_export(app: App, time_range: TimeRange, *, export_format: ExportFormat, by=None, via: str) -> None:
    """Audit an export when it starts: who took which app's data, for which range, how."""
    record_audit(
        app.organization,
        action="events.export",
        target=app.public_id,
        actor=by,
        details={
            "format": export_format.name,
            "from": time_range.start.isoformat() if time_range.start else None,
            "to": time_range.end.isoformat() if time_range.end else None,
            "via": via,
        },
    )


# --- Deletion -----------------------------------------------------------------------


def delete_events(events: EventQuerySet, *, batch_size: int = DELETE_BATCH_SIZE) -> int:
    """Delete the events the queryset selects, at most `batch_size` per
    transaction; returns how many were deleted.

    Erasure deletes through here. Filter the queryset to one app so each
    batch is found on the (app, timestamp) index."""
    deleted = 0
    # One query collects the keys of several batches (erasure's user filter
    # reads the (app, user_id, timestamp) index), while each transaction stays small.
    for page in keyset_pages(events, fields=("app_id",), page_size=batch_size * DELETE_BATCHES_PER_SCAN):
        for start in range(0, len(page), batch_size):
            with events_atomic():
                deleted += _delete_batch(page[start : start + batch_size])
    return deleted


def _delete_batch(page: list[tuple]) -> int:
    """Delete one page of (timestamp, pk, app_id) rows inside the caller's transaction.

    The one place rows leave the events table here: data kept in step with
    events (rollups) is adjusted in this function, per app, in the same
    transaction as the delete."""
    by_app: dict[int, list[int]] = {}
    for _, pk, app_id in page:
        by_app.setdefault(app_id, []).append(pk)
    deleted = 0
    for app_id, pks in by_app.items():
        deleted += storage.delete_events(app_id, pks)  # takes them out of the rollups too
    return deleted


# --- Erasure ------------------------------------------------------------------------

MAX_USER_ID_LENGTH = Event._meta.get_field("user_id").max_length


@dataclass(frozen=True)
class ErasureResult:
    """Events per app public id (apps without any are left out)."""

    per_app: dict[str, int]
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.per_app.values())


def clean_user_id(user_id: str) -> str:
    user_id = (user_id or "").strip()
    if not user_id:
        raise LifecycleError("Enter the user id to erase.")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise LifecycleError(f"A user id is at most {MAX_USER_ID_LENGTH} characters.")
    return user_id


def count_user_events(organization: Organization, *, user_id: str) -> ErasureResult:
    """How many events each app of the organization holds for the user (a dry run)."""
    user_id = clean_user_id(user_id)
    # The apps first, then their events by id: the two may live on different
    # servers (telemetry.databases), so no join between them.
    public_ids = dict(organization.apps.values_list("pk", "public_id"))
    rows = (
        Event.objects.filter(app_id__in=public_ids, user_id=user_id)
        .values_list("app_id")
        .annotate(n=Count("pk"))
        .order_by("app_id")  # the order erase_user goes through the apps
    )
    return ErasureResult(per_app={public_ids[app_id]: n for app_id, n in rows}, dry_run=True)


def user_id_digest(organization: Organization, user_id: str) -> str:
    """What the audit log keeps of an erased user id: SHA-256 of the organization
    and the id. Someone who holds the id can show it was erased; the log alone
    cannot give it back, nor link one user across organizations."""
    return hashlib.sha256(f"clacks-erasure:{organization.public_id}:{user_id}".encode()).hexdigest()


def erase_user(
    organization: Organization,
    *,
    user_id: str,
    by=None,
    via: str,
    dry_run: bool = False,
    batch_size: int = DELETE_BATCH_SIZE,
) -> ErasureResult:
    """Delete every event of `user_id` in every app of the organization and
    audit it; with dry_run, only count. Safe to run again after a failure."""
    user_id = clean_user_id(user_id)
    if dry_run:
        return count_user_events(organization, user_id=user_id)
    per_app = {}
    for app in organization.apps.order_by("pk"):
        deleted = delete_events(Event.objects.for_app(app).filter(user_id=user_id), batch_size=batch_size)
        if deleted:
            per_app[app.public_id] = deleted
    result = ErasureResult(per_app=per_app, dry_run=False)
    digest = user_id_digest(organization, user_id)
    # The id itself is personal data: the record keeps a digest and the counts.
    record_audit(
        organization,
        action="user.erase",
        target=f"user sha256:{digest[:16]}",
        actor=by,
        details={"user_id_sha256": digest, "events": result.total, "per_app": per_app, "via": via},
    )
    logger.info("erased %d events of one user in %s", result.total, organization.public_id)
    return result
