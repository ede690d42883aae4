"""manage.py export_events and erase_user: output, files, errors."""

from __future__ import annotations

import io
import uuid

import orjson
import pytest
from django.core.management import CommandError, call_command

from organizations.models import AuditEntry
from telemetry import lifecycle, periods
from telemetry.models import Event
from tests.factories import make_app, make_event
from tests.lifecycle.conftest import store_events

ERASED = "client_" + "e" * 64
KEPT = "client_" + "k" * 64


def run(*args) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def ids(app):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    store_events(
        app,
        [
            make_event(event_id=ids[0], timestamp="2026-11-01T00:00:00Z"),
            make_event(event_id=ids[1], timestamp="2026-11-15T12:00:00Z"),
            make_event(event_id=ids[2], timestamp="2026-12-01T00:00:00Z"),
        ],
    )
    return ids


def test_export_writes_json_lines_to_stdout_and_progress_to_stderr(app, ids):
    out, err = run("export_events", app.public_id, "--from", "2026-11-01", "--to", "2026-11-30", "--format", "jsonl")

    assert [orjson.loads(line)["event_id"] for line in out.splitlines()] == ids[:2]
    assert "2/2" in err  # the progress bar's last state
    assert err.rstrip().endswith(f"Exported 2 events of {app.public_id} (2026-11-01_2026-11-30) as jsonl.")


def test_export_writes_csv_to_a_file_and_progress_to_stdout(app, ids, tmp_path):
    target = tmp_path / "events.csv"

    out, err = run("export_events", app.public_id, "--format", "csv", "--output", str(target))

    expected = b"".join(
        lifecycle.export_events(app, periods.TimeRange(None, None), export_format=lifecycle.EXPORT_FORMATS["csv"])
    )
    assert target.read_bytes() == expected
    assert expected.count(b"\r\n") == 4
    assert "3/3" in out
    assert out.rstrip().endswith(f"Exported 3 events of {app.public_id} (start_now) as csv to {target}.")
    assert err == ""


def test_export_without_progress_prints_only_the_summary(app, ids, tmp_path):
    out, _ = run("export_events", app.public_id, "--no-progress", "--output", str(tmp_path / "x.jsonl"))

    assert out == f"Exported 3 events of {app.public_id} (start_now) as jsonl to {tmp_path / 'x.jsonl'}.\n"


def test_export_is_audited_as_done_from_the_command_line(app, ids):
    run("export_events", app.public_id, "--from", "2026-11-15T12:00:00Z", "--no-progress")

    entry = AuditEntry.objects.get(action="events.export")
    assert entry.actor is None
    assert entry.details == {"format": "jsonl", "from": "2026-11-15T12:00:00+00:00", "to": None, "via": "command"}


def test_export_refuses_an_unknown_app_a_bad_date_and_an_unwritable_file(app, tmp_path):
    with pytest.raises(CommandError, match="No app with id 'app_nope'"):
        run("export_events", "app_nope")
    with pytest.raises(CommandError, match="--to 'soon': use a date"):
        run("export_events", app.public_id, "--to", "soon")
    with pytest.raises(CommandError, match="Could not write .*missing/x.csv: No such file or directory"):
        run("export_events", app.public_id, "--output", str(tmp_path / "missing" / "x.csv"))
    with pytest.raises(CommandError, match="invalid choice: 'xml'"):
        run("export_events", app.public_id, "--format", "xml")


@pytest.fixture
def two_apps(org):
    first, _ = make_app(org, name="first-cli")
    second, _ = make_app(org, name="second-cli")
    store_events(first, [make_event(user_id=ERASED, event_id=str(uuid.uuid4())) for _ in range(3)])
    store_events(second, [make_event(user_id=ERASED, event_id=str(uuid.uuid4())) for _ in range(2)])
    store_events(second, [make_event(user_id=KEPT, event_id=str(uuid.uuid4()))])
    return first, second


def test_erase_user_deletes_and_reports_per_app(org, two_apps):
    first, second = two_apps

    out, _ = run("erase_user", org.public_id, ERASED)

    assert out == (
        f"{first.public_id} (first-cli): 3 events deleted\n"
        f"{second.public_id} (second-cli): 2 events deleted\n"
        f"Erased 5 events of this user in {org.public_id}; audit record written.\n"
    )
    assert list(Event.objects.values_list("user_id", flat=True)) == [KEPT]
    assert AuditEntry.objects.get(action="user.erase").details["via"] == "command"


def test_erase_user_dry_run_counts_and_deletes_nothing(org, two_apps):
    first, second = two_apps

    out, _ = run("erase_user", org.public_id, ERASED, "--dry-run")

    assert out == (
        f"{first.public_id} (first-cli): 3 events would be deleted\n"
        f"{second.public_id} (second-cli): 2 events would be deleted\n"
        f"Dry run: 5 events of this user in {org.public_id}; nothing deleted.\n"
    )
    assert Event.objects.count() == 6
    assert not AuditEntry.objects.filter(action="user.erase").exists()


def test_erase_user_refuses_an_unknown_organization_and_a_blank_id(org):
    with pytest.raises(CommandError, match="No organization with id 'org_nope'"):
        run("erase_user", "org_nope", ERASED)
    with pytest.raises(CommandError, match="Enter the user id"):
        run("erase_user", org.public_id, " ")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        run("erase_user", org.public_id, ERASED, "--batch-size", "0")
