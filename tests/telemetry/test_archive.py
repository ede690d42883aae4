"""Archive before delete (docs/archive.md): retention writes Parquet files and a manifest to a
directory or an S3-compatible bucket, deletes only what is written and verified, and
`manage.py restore_archive` loads it back with the rollups."""

from __future__ import annotations

import hashlib
import io
import urllib.request
from datetime import datetime, timedelta, timezone

import boto3
import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from moto.server import ThreadedMotoServer

from organizations.services import set_app_retention
from telemetry import archive, retention
from telemetry.management.commands.purge_events import purge_apps
from telemetry.models import Event, HourlyCounts
from tests.dashboard.conftest import sdk_event, store
from tests.rollups.test_rollups import assert_rebuild_matches, snapshot, user_days

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=timezone.utc)
# Retention of 30 days at NOW: the cutoff is 2026-02-08 12:30, and an app that archives
# loses whole UTC days only, so everything before 2026-02-08 00:00.
OLD_DAY_EVENTS = [
    sdk_event(datetime(2026, 1, 20, 10, 0, tzinfo=timezone.utc), user="a", data={"command": "build", "success": True, "duration_ms": 12}),
    sdk_event(datetime(2026, 1, 20, 23, 59, 59, tzinfo=timezone.utc), user="b", os="macos", data={"command": "test", "success": False}),
    sdk_event(datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc), user="c", type="feature_used", category="library", data={"feature": "x", "n": [1, 2]}),
]
KEPT_EVENTS = [
    sdk_event(datetime(2026, 2, 8, 6, 0, tzinfo=timezone.utc), user="d"),  # before the cutoff, but its day is not over
    sdk_event(datetime(2026, 3, 9, 9, 0, tzinfo=timezone.utc), user="e"),
]


@pytest.fixture
def archiving_app(app):
    set_app_retention(app, override=True, days=30)
    app.archive_before_delete = True
    app.save(update_fields=["archive_before_delete"])
    store(app, *OLD_DAY_EVENTS, *KEPT_EVENTS, now=NOW)
    return app


@pytest.fixture
def directory(settings, tmp_path):
    settings.CLACKS_ARCHIVE_S3_BUCKET = ""
    settings.CLACKS_ARCHIVE_DIR = tmp_path / "archive"
    return tmp_path / "archive"


def event_ids(events) -> set[str]:
    return {event["event_id"] for event in events}


def stored_ids(app) -> set[str]:
    return {str(event_id) for event_id in Event.objects.filter(app=app).values_list("event_id", flat=True)}


# --- To a directory ------------------------------------------------------------------------------


def test_retention_archives_whole_days_to_parquet_with_a_manifest_then_deletes_them(archiving_app, directory):
    app = archiving_app
    assert retention.prune_app(app, now=NOW, dry_run=True).deleted == 3  # the preview counts whole days too

    result = retention.prune_app(app, now=NOW)

    assert result.deleted == 3
    assert stored_ids(app) == event_ids(KEPT_EVENTS)
    folder = directory / app.organization.public_id / app.public_id
    assert sorted(path.name for path in folder.iterdir()) == [
        "events-2026-01-20.parquet", "events-2026-02-01.parquet", "manifest.json",
    ]  # fmt: skip
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    assert manifest["app_id"] == app.public_id and manifest["org_id"] == app.organization.public_id
    assert {day: entry["rows"] for day, entry in manifest["days"].items()} == {"2026-01-20": 2, "2026-02-01": 1}
    for entry in manifest["days"].values():
        data = (directory / entry["key"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
    table = pq.read_table(folder / "events-2026-02-01.parquet")
    (row,) = table.to_pylist()
    assert row["event_id"] == OLD_DAY_EVENTS[2]["event_id"]
    assert row["timestamp"] == datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc)
    assert row["received_at"] == NOW
    assert (row["event_type"], row["category"], row["user_id"], row["os"]) == ("feature_used", "library", "client_c", "linux")
    assert orjson.loads(row["data"]) == {"feature": "x", "n": [1, 2]}
    assert_rebuild_matches(app)  # deleted through telemetry.storage: the rollups lost exactly these


def test_restore_archive_loads_the_events_back_with_their_rollups_and_is_idempotent(archiving_app, directory, capsys):
    app = archiving_app
    before = snapshot(app), user_days(app)
    retention.prune_app(app, now=NOW)
    assert snapshot(app) != before[0]

    call_command("restore_archive", app.public_id)
    assert stored_ids(app) == event_ids(OLD_DAY_EVENTS + KEPT_EVENTS)
    assert (snapshot(app), user_days(app)) == before
    assert "3 restored" in capsys.readouterr().out

    call_command("restore_archive", app.public_id)  # again: every event is already there
    assert Event.objects.filter(app=app).count() == 5
    assert (snapshot(app), user_days(app)) == before
    assert "0 restored" in capsys.readouterr().out
    restored = Event.objects.get(app=app, event_id=OLD_DAY_EVENTS[0]["event_id"])
    assert restored.received_at == NOW and restored.data == {"command": "build", "success": True, "duration_ms": 12}
    assert_rebuild_matches(app)


def test_restore_archive_takes_a_range_of_days(archiving_app, directory):
    retention.prune_app(archiving_app, now=NOW)
    call_command("restore_archive", archiving_app.public_id, "--from", "2026-02-01", "--to", "2026-02-01")
    assert stored_ids(archiving_app) == event_ids(OLD_DAY_EVENTS[2:] + KEPT_EVENTS)


def test_a_late_event_for_an_archived_day_is_merged_into_its_file(archiving_app, directory):
    app = archiving_app
    retention.prune_app(app, now=NOW)
    late = sdk_event(datetime(2026, 1, 20, 12, 0, tzinfo=timezone.utc), user="f")
    store(app, late, now=NOW)

    assert retention.prune_app(app, now=NOW).deleted == 1

    key = archive.day_key(app, datetime(2026, 1, 20).date())
    ids = set(pq.read_table(directory / key).column("event_id").to_pylist())
    assert ids == event_ids(OLD_DAY_EVENTS[:2] + [late])
    manifest = orjson.loads((directory / archive.manifest_key(app)).read_bytes())
    assert manifest["days"]["2026-01-20"]["rows"] == 3
    assert manifest["days"]["2026-01-20"]["sha256"] == hashlib.sha256((directory / key).read_bytes()).hexdigest()


def test_a_file_archived_but_not_deleted_is_not_archived_twice(archiving_app, directory):
    app = archiving_app
    # As if a run wrote the file and stopped before deleting: the next run rewrites it, once per event.
    with archive.tempfile.TemporaryDirectory() as workdir:
        archive.archive_day(app, datetime(2026, 1, 20).date(), store=archive.configured_store(), before=NOW, workdir=archive.Path(workdir))
    retention.prune_app(app, now=NOW)
    table = pq.read_table(directory / archive.day_key(app, datetime(2026, 1, 20).date()))
    assert sorted(table.column("event_id").to_pylist()) == sorted(event_ids(OLD_DAY_EVENTS[:2]))


def test_an_archive_that_cannot_be_written_leaves_the_events_in_place(archiving_app, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the archive directory should be")
    settings.CLACKS_ARCHIVE_S3_BUCKET = ""
    settings.CLACKS_ARCHIVE_DIR = blocker

    with pytest.raises(archive.ArchiveError):
        retention.prune_app(archiving_app, now=NOW)
    summary = purge_apps([archiving_app], now=NOW)

    assert summary.failed == [archiving_app.public_id]
    assert Event.objects.filter(app=archiving_app).count() == 5


def test_apps_that_do_not_archive_keep_deleting_as_before(app, directory):
    set_app_retention(app, override=True, days=30)
    store(app, *OLD_DAY_EVENTS, *KEPT_EVENTS, now=NOW)
    assert retention.prune_app(app, now=NOW).deleted == 4  # to the minute, not the day
    assert not directory.exists()


def test_an_app_follows_its_organizations_archive_choice_unless_it_has_its_own(app):
    assert app.effective_archive is False
    app.organization.archive_before_delete = True
    assert app.effective_archive is True
    app.archive_before_delete = False
    assert app.effective_archive is False


# --- To an S3-compatible bucket (moto's server on 127.0.0.1) ----------------------------------------


@pytest.fixture
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets in the process, across servers: start every test empty.
    urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST")).close()
    yield server, endpoint
    server.stop()


@pytest.fixture
def bucket(s3_server, settings):
    _, endpoint = s3_server
    settings.CLACKS_ARCHIVE_S3_ENDPOINT = endpoint
    settings.CLACKS_ARCHIVE_S3_BUCKET = "clacks-archive"
    settings.CLACKS_ARCHIVE_S3_REGION = "us-east-1"
    settings.CLACKS_ARCHIVE_S3_ACCESS_KEY = "test-access"
    settings.CLACKS_ARCHIVE_S3_SECRET_KEY = "test-secret"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test-access", aws_secret_access_key="test-secret",
    )  # fmt: skip
    return client


def test_retention_archives_to_a_bucket_and_the_archive_restores(archiving_app, bucket):
    app = archiving_app
    bucket.create_bucket(Bucket="clacks-archive")
    before = snapshot(app), user_days(app)

    assert retention.prune_app(app, now=NOW).deleted == 3

    prefix = f"{app.organization.public_id}/{app.public_id}/"
    keys = sorted(item["Key"] for item in bucket.list_objects_v2(Bucket="clacks-archive")["Contents"])
    assert keys == [prefix + "events-2026-01-20.parquet", prefix + "events-2026-02-01.parquet", prefix + "manifest.json"]
    manifest = orjson.loads(bucket.get_object(Bucket="clacks-archive", Key=prefix + "manifest.json")["Body"].read())
    body = bucket.get_object(Bucket="clacks-archive", Key=prefix + "events-2026-01-20.parquet")["Body"].read()
    assert manifest["days"]["2026-01-20"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert pq.read_table(io.BytesIO(body)).num_rows == manifest["days"]["2026-01-20"]["rows"] == 2
    assert stored_ids(app) == event_ids(KEPT_EVENTS)

    call_command("restore_archive", app.public_id)
    assert (snapshot(app), user_days(app)) == before
    assert stored_ids(app) == event_ids(OLD_DAY_EVENTS + KEPT_EVENTS)


def test_a_missing_bucket_leaves_the_events_in_place(archiving_app, bucket):
    with pytest.raises(archive.ArchiveError, match="NoSuchBucket"):
        retention.prune_app(archiving_app, now=NOW)
    assert Event.objects.filter(app=archiving_app).count() == 5
    assert HourlyCounts.objects.filter(app=archiving_app, dimension="total").count() > 0


def test_a_stopped_server_leaves_the_events_in_place(archiving_app, bucket, s3_server):
    bucket.create_bucket(Bucket="clacks-archive")
    server, _ = s3_server
    server.stop()

    summary = purge_apps([archiving_app], now=NOW)

    assert summary.failed == [archiving_app.public_id]
    assert Event.objects.filter(app=archiving_app).count() == 5


def test_a_corrupted_file_is_refused_on_restore(archiving_app, bucket):
    bucket.create_bucket(Bucket="clacks-archive")
    retention.prune_app(archiving_app, now=NOW)
    key = archive.day_key(archiving_app, datetime(2026, 1, 20).date())
    bucket.put_object(Bucket="clacks-archive", Key=key, Body=b"not what was archived")

    with pytest.raises(archive.ArchiveError, match="SHA-256"):
        archive.restore_app(archiving_app)
    assert stored_ids(archiving_app) == event_ids(KEPT_EVENTS)


# --- Time partitions (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.postgres
def test_purge_events_archives_a_partition_of_an_archiving_app_instead_of_dropping_it(on_postgres, app, directory):
    from telemetry import partitions
    from tests.rollups.test_partitions import at

    app.organization.retention_days = 7
    app.organization.archive_before_delete = True
    app.organization.save()
    partitions._create_partition(datetime(2020, 3, 1).date(), datetime(2020, 4, 1).date())
    old = sdk_event(at(2020, 3, 5), user="a")
    store(app, old, now=NOW)

    out = io.StringIO()
    call_command("purge_events", stdout=out)

    assert "dropped partition" not in out.getvalue()  # its rows went through the archive
    assert Event.objects.filter(app=app).count() == 0
    table = pq.read_table(directory / archive.day_key(app, datetime(2020, 3, 5).date()))
    assert table.column("event_id").to_pylist() == [old["event_id"]]
    assert partitions.drop_expired_partitions(now=datetime.now(timezone.utc)) == ["telemetry_event_p20200301"]  # now empty
