"""Archive before delete: retention writes what it is about to delete to Parquet files,
and `manage.py restore_archive` loads them back (docs/archive.md).

- One file per app and UTC day, `<org_id>/<app_id>/events-<YYYY-MM-DD>.parquet`, and one
  manifest per app, `<org_id>/<app_id>/manifest.json`, holding each file's row count,
  size and SHA-256.
- In a local directory (CLACKS_ARCHIVE_DIR) or an S3-compatible bucket
  (CLACKS_ARCHIVE_S3_*), whichever the settings name.
- Events are deleted only once their file is written, read back and found whole (its
  SHA-256 and row count), and the manifest saying so is written and read back. A
  failure anywhere raises ArchiveError and deletes nothing.
- Retention that archives works in whole UTC days (telemetry.retention): a day is
  archived and deleted once all of it is past retention. Events that arrive later for
  a day already archived are merged into its file (by event id) the next time.
- Deleting goes through telemetry.storage.delete_events, restoring through
  telemetry.storage.store_batch (idempotent by event id), so the rollups and every
  other derived table stay exact.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.utils import timezone

from organizations.models import App
from telemetry import storage
from telemetry.databases import events_connection
from telemetry.lifecycle import keyset_pages
from telemetry.models import Event
from telemetry.periods import DAY, UTC, start_of_day

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
PAGE_SIZE = 2000  # rows read from the database, and written as one Parquet row group, at a time
_TEXT_FIELDS = (
    "schema_version", "event_type", "category", "user_id", "session_id", "service_name", "service_version",
    "service_language", "service_language_version", "os", "os_version", "arch",
)  # fmt: skip
_TIME = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("timestamp", _TIME),
        ("received_at", _TIME),
        *[(name, pa.string()) for name in _TEXT_FIELDS],
        ("ci", pa.bool_()),
        ("shell", pa.string()),
        ("sdk_version", pa.string()),
        ("data", pa.string()),  # event.data as compact JSON with sorted keys
    ]
)
_DB_FIELDS = ("event_id", "received_at", *_TEXT_FIELDS, "ci", "shell", "sdk_version", "data")


class ArchiveError(Exception):
    """The archive could not be written, read or verified; nothing was deleted."""


# --- Where archives go -----------------------------------------------------------------------


class DirectoryStore:
    """Files under a local directory (CLACKS_ARCHIVE_DIR)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __str__(self) -> str:
        return f"directory {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / key

    def put_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)  # readers see the old file or the whole new one

    def get_file(self, key: str, target: Path) -> bool:
        try:
            shutil.copyfile(self._path(key), target)
        except FileNotFoundError:
            return False
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            handle.write(data)
        try:
            self.put_file(key, Path(handle.name))
        finally:
            os.unlink(handle.name)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None


class S3Store:
    """Objects in an S3-compatible bucket (CLACKS_ARCHIVE_S3_*)."""

    def __init__(self, *, bucket: str, endpoint: str = "", region: str = "", access_key: str = "", secret_key: str = ""):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def __str__(self) -> str:
        return f"bucket {self.bucket}"

    def _missing(self, error) -> bool:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, key)

    def get_file(self, key: str, target: Path) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, key, str(target))
        except ClientError as error:
            if self._missing(error):
                return False
            raise
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if self._missing(error):
                return None
            raise

    def size(self, key: str) -> int:
        return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]


Store = DirectoryStore | S3Store


def configured_store() -> Store:
    """The bucket when CLACKS_ARCHIVE_S3_BUCKET is set, else the directory CLACKS_ARCHIVE_DIR."""
    if settings.CLACKS_ARCHIVE_S3_BUCKET:
        return S3Store(
            bucket=settings.CLACKS_ARCHIVE_S3_BUCKET,
            endpoint=settings.CLACKS_ARCHIVE_S3_ENDPOINT,
            region=settings.CLACKS_ARCHIVE_S3_REGION,
            access_key=settings.CLACKS_ARCHIVE_S3_ACCESS_KEY,
            secret_key=settings.CLACKS_ARCHIVE_S3_SECRET_KEY,
        )
    return DirectoryStore(settings.CLACKS_ARCHIVE_DIR)


def destination_label() -> str:
    """Where archives go, in words for the settings pages (no path or bucket name: they are the server's)."""
    return "server's archive bucket" if settings.CLACKS_ARCHIVE_S3_BUCKET else "server's archive directory"


@contextmanager
def _failures_as_archive_errors(store: Store, what: str) -> Iterator[None]:
    """Any storage failure (a full disk, a missing bucket, a server that went away) is an ArchiveError."""
    try:
        yield
    except ArchiveError:
        raise
    except Exception as error:  # boto3, OSError, pyarrow: every one means "not archived"
        raise ArchiveError(f"{what} in {store}: {type(error).__name__}: {error}") from error


# --- Keys and the manifest --------------------------------------------------------------------


def app_prefix(app: App) -> str:
    return f"{app.organization.public_id}/{app.public_id}"


def day_key(app: App, day: date) -> str:
    return f"{app_prefix(app)}/events-{day.isoformat()}.parquet"


def manifest_key(app: App) -> str:
    return f"{app_prefix(app)}/manifest.json"


def read_manifest(store: Store, app: App) -> dict:
    """The app's manifest, or an empty one when nothing was archived yet."""
    with _failures_as_archive_errors(store, "reading the manifest"):
        data = store.get_bytes(manifest_key(app))
    if data is None:
        return {"format": FORMAT_VERSION, "org_id": app.organization.public_id, "app_id": app.public_id, "days": {}}
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ArchiveError(f"The manifest {manifest_key(app)} in {store} is not JSON: {error}") from error
    if manifest.get("format") != FORMAT_VERSION or not isinstance(manifest.get("days"), dict):
        raise ArchiveError(f"The manifest {manifest_key(app)} in {store} is not one this version reads.")
    return manifest


def _write_manifest(store: Store, app: App, manifest: dict) -> None:
    data = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    with _failures_as_archive_errors(store, "writing the manifest"):
        store.put_bytes(manifest_key(app), data)
        if store.get_bytes(manifest_key(app)) != data:
            raise ArchiveError(f"The manifest {manifest_key(app)} read back from {store} differs from what was written.")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- Writing one day ------------------------------------------------------------------------


def _arrow_batch(rows: list[tuple]) -> pa.RecordBatch:
    """(timestamp, pk, *_DB_FIELDS) rows as a record batch of SCHEMA."""
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    for timestamp, _pk, event_id, received_at, *rest in rows:
        columns["event_id"].append(str(event_id))
        columns["timestamp"].append(timestamp)
        columns["received_at"].append(received_at)
        *values, data = rest
        for name, value in zip(_DB_FIELDS[2:-1], values):
            columns[name].append(value)
        columns["data"].append(orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode())
    return pa.RecordBatch.from_pydict(columns, schema=SCHEMA)


@dataclass(frozen=True)
class ArchivedDay:
    day: date
    key: str
    rows: int  # rows in the file (earlier archived rows of the day included)
    sha256: str
    event_pks: list[int]  # the database rows the file now holds, to delete


def archive_day(app: App, day: date, *, store: Store, before: datetime, workdir: Path) -> ArchivedDay:
    """Write the app's events of the UTC day (those before `before`) to the day's file, merged
    with what an earlier run archived for that day; verify it; record it in the manifest."""
    key = day_key(app, day)
    start = start_of_day(day)
    events = Event.objects.filter(app=app, timestamp__gte=start, timestamp__lt=min(start + DAY, before))
    earlier = workdir / "earlier.parquet"
    with _failures_as_archive_errors(store, f"reading {key}"):
        has_earlier = store.get_file(key, earlier)
    written = workdir / "day.parquet"
    pks: list[int] = []
    ids: set[str] = set()
    rows = 0
    with _failures_as_archive_errors(store, f"writing {key} locally"):
        with pq.ParquetWriter(written, SCHEMA, compression="zstd") as writer:
            for page in keyset_pages(events, fields=_DB_FIELDS, page_size=PAGE_SIZE):
                batch = _arrow_batch(page)
                writer.write_batch(batch)
                rows += batch.num_rows
                pks.extend(row[1] for row in page)
                if has_earlier:
                    ids.update(str(row[2]) for row in page)
            if has_earlier:
                for batch in pq.ParquetFile(earlier).iter_batches(batch_size=PAGE_SIZE):
                    table = pa.Table.from_batches([batch]).cast(SCHEMA)
                    kept = table.filter(pa.array([event_id not in ids for event_id in table.column("event_id").to_pylist()]))
                    if kept.num_rows:
                        writer.write_table(kept)
                        rows += kept.num_rows
    digest, size = sha256_of(written), written.stat().st_size
    with _failures_as_archive_errors(store, f"uploading {key}"):
        store.put_file(key, written)
    _verify(store, key, sha256=digest, rows=rows, size=size, workdir=workdir)
    manifest = read_manifest(store, app)
    manifest["app_name"] = app.name
    manifest["days"][day.isoformat()] = {
        "key": key,
        "rows": rows,
        "bytes": size,
        "sha256": digest,
        "written_at": timezone.now().isoformat(),
    }
    _write_manifest(store, app, manifest)
    return ArchivedDay(day=day, key=key, rows=rows, sha256=digest, event_pks=pks)


def _verify(store: Store, key: str, *, sha256: str, rows: int, size: int, workdir: Path) -> None:
    """Read the file back from the store: its size, SHA-256 and row count must be what was written."""
    copy = workdir / "readback.parquet"
    with _failures_as_archive_errors(store, f"reading back {key}"):
        if isinstance(store, S3Store) and store.size(key) != size:
            raise ArchiveError(f"{key} in {store} does not have the {size} bytes written.")
        if not store.get_file(key, copy):
            raise ArchiveError(f"{key} is not in {store} after writing it.")
        if sha256_of(copy) != sha256:
            raise ArchiveError(f"{key} read back from {store} does not match its SHA-256.")
        if pq.ParquetFile(copy).metadata.num_rows != rows:
            raise ArchiveError(f"{key} read back from {store} does not hold {rows} rows.")
    copy.unlink()


# --- Retention: archive, then delete ------------------------------------------------------------


@contextmanager
def _app_lock(app: App) -> Iterator[bool]:
    """On PostgreSQL, one archiving run per app at a time (a session advisory lock; yields
    False when another run holds it). SQLite's callers run one purge at a time (docs/archive.md)."""
    if events_connection.vendor != "postgresql":
        yield True
        return
    with events_connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('clacks-archive'), %s)", [app.pk])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with events_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext('clacks-archive'), %s)", [app.pk])


@dataclass(frozen=True)
class ArchiveRun:
    archived: int  # rows written to files
    deleted: int
    days: list[date]
    batches: int


def archive_and_delete(
    app: App,
    *,
    before: datetime,
    store: Store | None = None,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> ArchiveRun:
    """Archive, then delete, the app's events with timestamp < `before` (a UTC midnight), a day
    at a time. Raises ArchiveError (after the days already done) when a day cannot be archived."""
    store = store or configured_store()
    deleted = archived = batches = 0
    days: list[date] = []
    with _app_lock(app) as locked:
        if not locked:
            logger.info("archiving %s: another run has it; skipped", app.public_id)
            return ArchiveRun(0, 0, [], 0)
        while True:
            first = Event.objects.filter(app=app, timestamp__lt=before).order_by("timestamp").values_list("timestamp", flat=True).first()
            if first is None:
                break
            day = first.astimezone(UTC).date()
            with tempfile.TemporaryDirectory(prefix="clacks-archive-") as workdir:
                result = archive_day(app, day, store=store, before=before, workdir=Path(workdir))
            archived += result.rows
            days.append(day)
            logger.info("archived %s %s: %d rows to %s", app.public_id, day, result.rows, store)
            for start in range(0, len(result.event_pks), batch_size):
                deleted += storage.delete_events(app.pk, result.event_pks[start : start + batch_size])
                batches += 1
                if progress is not None:
                    progress(deleted)
    return ArchiveRun(archived=archived, deleted=deleted, days=days, batches=batches)


# --- Restoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    files: int
    rows: int
    stored: int  # rows that were not in the database (the others were already there)


def _store_rows(table: pa.Table) -> list[dict]:
    """Parquet rows as telemetry.storage.store_batch rows (telemetry.ingest's validated shape)."""
    rows = []
    for record in table.to_pylist():
        data_text = record.pop("data")
        record["data"] = data_text.encode()
        record["data_value"] = orjson.loads(data_text)
        for name in (*_TEXT_FIELDS, "shell", "sdk_version"):
            record[name] = record[name] or ""
        rows.append(record)
    return rows


def restore_app(
    app: App,
    *,
    store: Store | None = None,
    first: date | None = None,
    last: date | None = None,
    write: Callable[[str], None] | None = None,
) -> RestoreResult:
    """Load the app's archived days (from `first` to `last`, both included; None: open) back
    through telemetry.storage.store_batch: events already stored are skipped, and the rollups
    take the rest in. Each file is checked against its manifest SHA-256 before it is read."""
    store = store or configured_store()
    write = write or (lambda line: None)
    manifest = read_manifest(store, app)
    files = rows = stored = 0
    for day_text, entry in sorted(manifest["days"].items()):
        day = date.fromisoformat(day_text)
        if (first and day < first) or (last and day > last):
            continue
        with tempfile.TemporaryDirectory(prefix="clacks-restore-") as workdir:
            path = Path(workdir) / "day.parquet"
            with _failures_as_archive_errors(store, f"reading {entry['key']}"):
                if not store.get_file(entry["key"], path):
                    raise ArchiveError(f"{entry['key']} is in the manifest but not in {store}.")
            if sha256_of(path) != entry["sha256"]:
                raise ArchiveError(f"{entry['key']} in {store} does not match the SHA-256 in its manifest.")
            new = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=PAGE_SIZE):
                by_received: dict[datetime, list[dict]] = defaultdict(list)
                for row in _store_rows(pa.Table.from_batches([batch])):
                    by_received[row.pop("received_at")].append(row)
                for received_at, group in by_received.items():
                    new += storage.store_batch(app.pk, group, received_at=received_at)
                rows += batch.num_rows
        files += 1
        stored += new
        write(f"{app.public_id} {day_text}: {entry['rows']} archived, {new} restored")
    return RestoreResult(files=files, rows=rows, stored=stored)
