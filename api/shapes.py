"""The JSON shape of the dashboard's figures: its domain dataclasses, as they are.

The API hands out exactly what the dashboard's domain functions return
(dashboard.stats, releases, health, activity, platforms, properties, funnels),
so every figure is the dashboard's. Each dataclass that can appear in an
answer is registered here with the name its OpenAPI component gets, the fields
left out (internal sets of users, charts, model instances) and the derived
figures (properties) added. `to_json` turns a value into JSON data and
`schema_of` a type into its OpenAPI schema, from the same type hints, so the
schema cannot drift from what is sent (tests/api/test_schema.py checks both).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache

from dashboard import activity, funnels, health, platforms, properties, releases, stats
from telemetry import property_summaries
from telemetry.periods import UTC


@dataclass(frozen=True)
class Extra:
    type: object  # a type hint
    get: Callable | None = None  # default: the attribute of that name
    description: str = ""


@dataclass(frozen=True)
class Shape:
    name: str
    exclude: tuple[str, ...] = ()
    extra: dict[str, Extra] = field(default_factory=dict)
    description: str = ""


PERCENT = "Percent (0–100); null when the denominator is 0."
SHAPES: dict[type, Shape] = {
    stats.Change: Shape("Change", extra={"percent": Extra(float | None, description="Change against the previous period in percent; null when it had nothing.")}),
    stats.Summary: Shape("Summary", description="Events, distinct users and sessions in the range and in the period of the same length before it."),
    stats.Bucket: Shape("Bucket"),
    stats.BreakdownRow: Shape("BreakdownRow"),
    stats.Breakdown: Shape("Breakdown"),
    stats.CommandStats: Shape("CommandStats", extra={"success_rate": Extra(float | None, description=PERCENT)}),
    stats.CommandRow: Shape("CommandRow", extra={"success_rate": Extra(float | None, description=PERCENT)}),
    stats.AppActivity: Shape(
        "AppActivity", exclude=("app",),
        extra={"app_id": Extra(str, lambda row: row.app.public_id), "app_name": Extra(str, lambda row: row.app.name)},
    ),
    stats.BucketPercentile: Shape(
        "DurationPercentile",
        extra={"value": Extra(float), "error": Extra(float | None), "exact": Extra(bool)},
        description="A percentile read from the duration histogram: the bucket [low, high] ms holding it.",
    ),
    releases.Series: Shape("VersionSeries"),
    releases.DailyUsers: Shape("DailyUsers"),
    releases.VersionRow: Shape("ReleaseVersionRow"),
    releases.Window: Shape("UsersWindow", exclude=("sets",), extra={"users": Extra(int)}),
    releases.VersionTable: Shape("VersionTable"),
    releases.RolloutDay: Shape("RolloutDay"),
    releases.Rollout: Shape("Rollout"),
    releases.BehindRow: Shape("BehindRow"),
    releases.OldVersions: Shape("OldVersions"),
    health.TestResult: Shape("TestResult"),
    health.Outcomes: Shape(
        "Outcomes", extra={"with_outcome": Extra(int), "failure_rate": Extra(float | None, description=PERCENT)}
    ),
    health.Durations: Shape("Durations", description="histogram: duration bucket (telemetry.rollups) → timed runs."),
    health.Regression: Shape("Regression"),
    health.Comparison: Shape("Comparison"),
    health.CommandHealth: Shape("CommandHealth"),
    health.VersionHealth: Shape("VersionHealth"),
    health.ReleaseHealth: Shape("ReleaseHealth"),
    health.TrendBucket: Shape("TrendBucket"),
    health.VersionRow: Shape("CommandVersionRow"),
    health.PlatformRow: Shape("CommandPlatformRow"),
    health.CountRow: Shape("CountRow"),
    health.CommandDetail: Shape("CommandDetail"),
    activity.DayActivity: Shape("DayActivity"),
    activity.NewReturning: Shape("NewReturning", extra={"returning": Extra(int)}),
    activity.Cell: Shape("CohortCell"),
    activity.Cohort: Shape("Cohort"),
    activity.OneDay: Shape("OneDay", extra={"share": Extra(float | None, description=PERCENT)}),
    activity.Retention: Shape("Retention"),
    platforms.Tail: Shape("Tail"),
    platforms.OSVersionRow: Shape("OSVersionRow", extra={"label": Extra(str)}),
    platforms.PlatformRow: Shape("PlatformRow"),
    platforms.Platforms: Shape("Platforms"),
    property_summaries.Coverage: Shape(
        "PropertyCoverage", exclude=("block_ids", "buckets", "fixed", "built"), extra={"missing": Extra(int)}
    ),
    properties.NumberFigures: Shape(
        "NumberFigures",
        extra={"mean": Extra(Decimal | None)},
        description="total and mean are exact decimals, as strings; percentiles are p50, p90, p99 where kept (empty otherwise).",
    ),
    properties.TypeChoice: Shape("TypeChoice"),
    properties.KeyRow: Shape("KeyRow"),
    properties.ValueRow: Shape("ValueRow"),
    properties.SeriesRow: Shape("NumberSeriesRow"),
    properties.SplitRow: Shape("SplitRow"),
    properties.Split: Shape("Split"),
    properties.KeyDetail: Shape("KeyDetail", exclude=("chart",)),
    properties.Report: Shape("PropertiesReport"),
    funnels.Step: Shape("FunnelStep", extra={"label": Extra(str)}),
    funnels.StepResult: Shape("FunnelStepResult"),
    funnels.FunnelResult: Shape("FunnelResult", extra={"entered": Extra(int), "completed": Extra(int)}),
}


@cache
def _fields(cls: type) -> list[tuple[str, object, Callable, str]]:
    """(name, type hint, getter, description) of what a registered dataclass shows."""
    shape = SHAPES[cls]
    hints = typing.get_type_hints(cls)
    out = [
        (f.name, hints[f.name], _attr(f.name), "")
        for f in dataclasses.fields(cls)
        if f.name not in shape.exclude and not f.name.startswith("_")
    ]
    out += [(name, extra.type, extra.get or _attr(name), extra.description) for name, extra in shape.extra.items()]
    return out


def _attr(name: str) -> Callable:
    return lambda obj: getattr(obj, name)


# --- Values to JSON data -------------------------------------------------------------------


def to_json(value):
    """JSON data (dicts, lists, str, numbers, bools, None) of a figure."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if type(value) in SHAPES:
        return {name: to_json(get(value)) for name, _, get, _ in _fields(type(value))}
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    raise TypeError(f"no JSON shape for {type(value).__name__}")


# --- Types to OpenAPI schemas ------------------------------------------------------------


def component_ref(cls: type) -> dict:
    return {"$ref": f"#/components/schemas/{SHAPES[cls].name}"}


def _nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"allOf": [schema], "nullable": True}
    return {**schema, "nullable": True}


def schema_of(hint) -> dict:
    """The OpenAPI 3.0 schema of a type hint, as to_json writes values of that type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        nullable = len(options) < len(args)
        schema = schema_of(options[0]) if len(options) == 1 else {"anyOf": [schema_of(arg) for arg in options]}
        return _nullable(schema) if nullable else schema
    if origin in (list, tuple) or hint in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            # A fixed pair such as (value, count): an array of exactly those items.
            items = [schema_of(arg) for arg in args]
            unique = list({repr(item): item for item in items}.values())
            return {"type": "array", "items": unique[0] if len(unique) == 1 else {"anyOf": unique},
                    "minItems": len(args), "maxItems": len(args)}  # fmt: skip
        return {"type": "array", "items": schema_of(args[0]) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object", "additionalProperties": schema_of(args[1]) if args else {}}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        # Test statistics may be infinite, which JSON cannot hold: those are null.
        return {"type": "number", "nullable": True}
    if hint is str:
        return {"type": "string"}
    if hint is Decimal:
        return {"type": "string", "format": "decimal"}
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    if hint is date:
        return {"type": "string", "format": "date"}
    if hint is timedelta:
        return {"type": "number", "description": "seconds"}
    if hint in SHAPES:
        return component_ref(hint)
    raise TypeError(f"no schema for {hint!r}")


def components() -> dict[str, dict]:
    """Every registered dataclass's schema, by component name."""
    out = {}
    for cls, shape in SHAPES.items():
        props = {}
        for name, hint, _, description in _fields(cls):
            schema = schema_of(hint)
            if description:
                schema = {**schema, "description": description} if "$ref" not in schema else {"allOf": [schema], "description": description}
            props[name] = schema
        out[shape.name] = {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
        if shape.description:
            out[shape.name]["description"] = shape.description
    return out
