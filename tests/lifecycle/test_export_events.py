"""telemetry.lifecycle.export_events: formats, exact contents, ranges, paging, memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from datetime import date

import orjson
import pytest
from django.test.utils import CaptureQueriesContext

from telemetry import lifecycle, periods
from telemetry.databases import events_connection
from telemetry.models import Event
from tests.factories import make_app, make_event
from tests.lifecycle.conftest import store_events

CSV = lifecycle.EXPORT_FORMATS["csv"]
JSONL = lifecycle.EXPORT_FORMATS["jsonl"]
EVERYTHING = periods.TimeRange(start=None, end=None)
USER = "client_" + "ab" * 32


def fixed_event(**overrides) -> dict:
    event = make_event(
        event_id="9b2f6a8e-3c1d-4f5e-8a7b-1c2d3e4f5a6b",
        timestamp="2026-11-20T10:15:30.123456789Z",
        user_id=USER,
        session_id="sess_" + "0" * 32,
        event={
            "type": "command_execution",
            "category": "usage",
            "data": {"success": True, "command": "build", "duration_ms": 1234, "args": ["--release"]},
        },
    )
    event.update(overrides)
    return event


def export(app, time_range=EVERYTHING, export_format=CSV, **kwargs) -> str:
    return b"".join(lifecycle.export_events(app, time_range, export_format=export_format, **kwargs)).decode()


def exported_ids(app, time_range=EVERYTHING, **kwargs) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in export(app, time_range, JSONL, **kwargs).splitlines()]


def test_csv_has_a_header_row_and_one_row_per_event_with_the_stored_values(app):
    store_events(app, [fixed_event()])

    assert export(app, export_format=CSV) == (
        "event_id,timestamp,received_at,schema_version,service_name,service_version,service_language,"
        "service_language_version,user_id,session_id,os,os_version,arch,ci,shell,event_type,category,"
        "sdk_version,data\r\n"
        "9b2f6a8e-3c1d-4f5e-8a7b-1c2d3e4f5a6b,2026-11-20T10:15:30.123456Z,2026-11-24T12:00:00.000000Z,"
        f"1.0.0,my-cli,1.2.0,rust,1.75.0,{USER},sess_{'0' * 32},linux,,x86_64,false,bash,"
        "command_execution,usage,telemetry-kit-rust/0.3.0,"
        '"{""args"":[""--release""],""command"":""build"",""duration_ms"":1234,""success"":true}"\r\n'
    )


def test_jsonl_gives_one_event_per_line_in_the_shape_the_sdk_sent(app):
    store_events(app, [fixed_event()])

    text = export(app, export_format=JSONL)

    assert text.endswith("\n") and text.count("\n") == 1
    assert orjson.loads(text) == {
        "schema_version": "1.0.0",
        "event_id": "9b2f6a8e-3c1d-4f5e-8a7b-1c2d3e4f5a6b",
        "timestamp": "2026-11-20T10:15:30.123456Z",
        "service": {"name": "my-cli", "version": "1.2.0", "language": "rust", "language_version": "1.75.0"},
        "user_id": USER,
        "session_id": "sess_" + "0" * 32,
        "environment": {"os": "linux", "arch": "x86_64", "ci": False, "shell": "bash"},
        "event": {
            "type": "command_execution",
            "category": "usage",
            "data": {"args": ["--release"], "command": "build", "duration_ms": 1234, "success": True},
        },
        "metadata": {"sdk_version": "telemetry-kit-rust/0.3.0"},
        "received_at": "2026-11-24T12:00:00.000000Z",
    }
    # Key order as the SDK writes them, so a line reads like what was sent.
    assert list(orjson.loads(text)) == [
        "schema_version", "event_id", "timestamp", "service", "user_id", "session_id",
        "environment", "event", "metadata", "received_at",
    ]


def test_optional_fields_the_sdk_omits_are_omitted_in_jsonl_and_empty_in_csv(app):
    store_events(
        app,
        [
            fixed_event(
                session_id=None,
                service={"name": "my-cli", "version": "1.2.0", "language": "rust"},
                environment={"os": "windows"},
                event={"type": "startup", "data": {}},
            )
        ],
    )

    line = orjson.loads(export(app, export_format=JSONL))
    row = list(csv.DictReader(io.StringIO(export(app, export_format=CSV))))[0]

    assert "session_id" not in line
    assert line["service"] == {"name": "my-cli", "version": "1.2.0", "language": "rust"}
    assert line["environment"] == {"os": "windows"}
    assert line["event"] == {"type": "startup", "data": {}}
    assert {key: row[key] for key in ("session_id", "service_language_version", "arch", "ci", "shell", "category")} == {
        "session_id": "", "service_language_version": "", "arch": "", "ci": "", "shell": "", "category": "",
    }
    assert row["data"] == "{}"


def test_quotes_commas_newlines_and_non_ascii_text_survive_a_csv_round_trip(app):
    tricky = 'say "hi", then\nleave — ünïcode ✓'
    store_events(app, [fixed_event(event={"type": "a,b \"c\"", "data": {"text": tricky}})])

    text = export(app, export_format=CSV)
    row = list(csv.DictReader(io.StringIO(text)))[0]

    assert row["event_type"] == 'a,b "c"'
    assert orjson.loads(row["data"]) == {"text": tricky}


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_prefixed_with_a_quote(app):
    store_events(
        app,
        [
            fixed_event(
                service={"name": "=HYPERLINK(\"http://x\")", "version": "+1", "language": "@rust"},
                event={"type": "-cmd", "data": {}},
            )
        ],
    )

    row = list(csv.DictReader(io.StringIO(export(app, export_format=CSV))))[0]
    line = orjson.loads(export(app, export_format=JSONL))

    assert (row["service_name"], row["service_version"], row["service_language"], row["event_type"]) == (
        "'=HYPERLINK(\"http://x\")", "'+1", "'@rust", "'-cmd",
    )
    # JSON Lines is not opened by spreadsheets and stays exact.
    assert line["service"]["name"] == "=HYPERLINK(\"http://x\")"


def test_day_ranges_include_the_first_and_last_day_and_nothing_outside(app):
    times = {
        "before": "2026-11-09T23:59:59.999999Z",
        "first": "2026-11-10T00:00:00Z",
        "last": "2026-11-12T23:59:59.999999Z",
        "after": "2026-11-13T00:00:00Z",
    }
    ids = {name: str(uuid.uuid4()) for name in times}
    store_events(app, [fixed_event(event_id=ids[name], timestamp=moment) for name, moment in times.items()])

    in_range = exported_ids(app, lifecycle.parse_time_range("2026-11-10", "2026-11-12"))

    assert in_range == [ids["first"], ids["last"]]


def test_time_bounds_include_from_and_exclude_to(app):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    store_events(
        app,
        [
            fixed_event(event_id=ids[0], timestamp="2026-11-10T11:59:59Z"),
            fixed_event(event_id=ids[1], timestamp="2026-11-10T12:00:00Z"),
            fixed_event(event_id=ids[2], timestamp="2026-11-10T13:00:00Z"),
        ],
    )

    time_range = lifecycle.parse_time_range("2026-11-10T12:00:00Z", "2026-11-10T13:00:00Z")

    assert exported_ids(app, time_range) == [ids[1]]


def test_an_open_range_exports_every_event_of_the_app_oldest_first(app):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    store_events(
        app,
        [
            fixed_event(event_id=ids[2], timestamp="2026-11-12T00:00:00Z"),
            fixed_event(event_id=ids[0], timestamp="2020-01-01T00:00:00Z"),
            fixed_event(event_id=ids[1], timestamp="2026-11-11T00:00:00Z"),
        ],
    )

    assert exported_ids(app, lifecycle.parse_time_range(None, None)) == ids


def test_events_sharing_a_timestamp_across_page_boundaries_are_each_exported_once(app):
    same = [fixed_event(event_id=str(uuid.uuid4()), timestamp="2026-11-20T10:00:00Z") for _ in range(11)]
    later = [fixed_event(event_id=str(uuid.uuid4()), timestamp="2026-11-20T10:00:01Z") for _ in range(3)]
    store_events(app, same + later)

    ids = exported_ids(app, page_size=4)

    expected_same = [str(pk) for pk in Event.objects.filter(timestamp="2026-11-20T10:00:00Z").order_by("pk").values_list("event_id", flat=True)]
    assert ids[:11] == expected_same
    assert sorted(ids[11:]) == sorted(event["event_id"] for event in later)
    assert len(ids) == len(set(ids)) == 14


def test_only_the_apps_own_events_are_exported(app, org, charlies_org):
    sibling, _ = make_app(org, name="sibling")
    stranger, _ = make_app(charlies_org, name="stranger")
    mine = str(uuid.uuid4())
    store_events(app, [fixed_event(event_id=mine)])
    store_events(sibling, [fixed_event(event_id=str(uuid.uuid4()))])
    store_events(stranger, [fixed_event(event_id=str(uuid.uuid4()))])

    assert exported_ids(app) == [mine]


def test_an_app_without_events_exports_only_the_csv_header(app):
    assert export(app, export_format=CSV) == lifecycle._csv_line(lifecycle.CSV_HEADER).decode()
    assert export(app, export_format=JSONL) == ""


def test_the_export_yields_its_first_page_before_reading_the_rest(app):
    store_events(app, [fixed_event(event_id=str(uuid.uuid4())) for _ in range(50)])
    chunks = lifecycle.export_events(app, EVERYTHING, export_format=JSONL, page_size=10)

    with CaptureQueriesContext(events_connection) as queries:
        first = next(chunks)

    assert first.count(b"\n") == 10
    assert len(queries) == 1
    assert " LIMIT 10" in queries[0]["sql"]
    assert sum(chunk.count(b"\n") for chunk in chunks) == 40


def test_progress_is_reported_after_every_page(app):
    store_events(app, [fixed_event(event_id=str(uuid.uuid4())) for _ in range(25)])
    pages = []

    export(app, export_format=CSV, page_size=10, on_page=pages.append)

    assert pages == [10, 10, 5]


def peak_memory_of_export(app, *, page_size: int) -> tuple[int, int]:
    """(peak bytes allocated while exporting, bytes exported)."""
    size = 0
    tracemalloc.start()
    try:
        for chunk in lifecycle.export_events(app, EVERYTHING, export_format=JSONL, page_size=page_size):
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, size


def test_memory_stays_bounded_whatever_the_number_of_events(app):
    def many(n):
        return [
            fixed_event(event_id=str(uuid.uuid4()), timestamp=f"2026-11-20T10:{i // 60 % 60:02d}:{i % 60:02d}Z")
            for i in range(n)
        ]

    store_events(app, many(1_000))
    small_peak, small_size = peak_memory_of_export(app, page_size=250)
    store_events(app, many(15_000))
    large_peak, large_size = peak_memory_of_export(app, page_size=250)

    assert large_size > 15 * small_size  # sixteen times the events...
    assert large_peak < 2 * small_peak  # ...and about the same memory: one page's worth
    assert large_peak < large_size / 5


def test_a_bad_date_gives_a_message_that_says_what_to_type():
    with pytest.raises(lifecycle.LifecycleError, match=r"--from 'yesterday': use a date \(2026-11-30\)"):
        lifecycle.parse_time_range("yesterday", None)
    with pytest.raises(lifecycle.LifecycleError, match="--to '2026-02-30'"):
        lifecycle.parse_time_range(None, "2026-02-30")


def test_the_last_representable_day_is_refused_rather_than_overflowing():
    with pytest.raises(lifecycle.LifecycleError, match="--to '9999-12-31' is too far in the future"):
        lifecycle.parse_time_range(None, "9999-12-31")
    with pytest.raises(periods.InvalidRange, match="end date is too far in the future"):
        periods.day_range(date(2026, 1, 1), date(9999, 12, 31))


def test_an_empty_or_reversed_range_is_refused():
    with pytest.raises(lifecycle.LifecycleError, match="range is empty"):
        lifecycle.parse_time_range("2026-11-10T00:00:00Z", "2026-11-10T00:00:00Z")
    with pytest.raises(periods.InvalidRange, match="before the start"):
        periods.day_range(date(2026, 11, 10), date(2026, 11, 9))


@pytest.mark.postgres
def test_each_page_is_read_from_the_app_time_index(app, on_postgres):
    store_events(app, [fixed_event(event_id=str(uuid.uuid4())) for _ in range(20)])
    events = lifecycle.events_in_range(app, lifecycle.parse_time_range("2026-11-01", "2026-11-30"))
    page = (
        events.filter(timestamp__gte="2026-11-20T10:15:30Z")
        .order_by("timestamp", "pk")
        .values_list("timestamp", "pk")[:100]
    )

    with events_connection.cursor() as cursor:
        # On a table this small the planner would rather scan it; forbid that to see which index it picks.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = page.explain()

    index_scan = next(line for line in plan.splitlines() if "Index Cond" in line)
    # On a time-partitioned table each partition has its own copy of the index.
    assert "event_app_time" in plan or "_app_id_timestamp_idx" in plan
    # The page's own lower bound is part of the index range: a page does not reread earlier pages.
    assert "\"timestamp\" >= '2026-11-20 10:15:30+00'" in index_scan
