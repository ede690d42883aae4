"""The OpenAPI document's pieces that drf-spectacular cannot read off the views:
the bearer key scheme, the error shape, and the shapes of the figures (api.shapes)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from api import shapes
from api.params import FILTERS_SCHEMA, RANGE_SCHEMA
from dashboard import activity, funnels, health, platforms, properties, releases, stats


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "api.base.BearerKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An organization's API key (Settings → API keys), sent as `Authorization: Bearer clacks_…`.",
        }


def only_api(endpoints):
    """drf-spectacular pre-processing hook: the REST API's endpoints only (ingest has docs/protocol.md)."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/orgs/")]


def add_shapes(result, generator, request, public):
    """drf-spectacular post-processing hook: the figures' components (api.shapes)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(shapes.components())
    schemas["Error"] = ERROR
    return result


# --- Building blocks ------------------------------------------------------------------------


def obj(**properties) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def nullable(schema: dict) -> dict:
    return shapes._nullable(schema)


def ref(cls) -> dict:
    return shapes.component_ref(cls)


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
DATETIME = {"type": "string", "format": "date-time"}

ERROR = {
    "type": "object",
    "description": "Every error: the ingest API's shape (docs/protocol.md, Error body).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": STRING, "message": STRING, "details": STRING},
            "required": ["code", "message"],
            "additionalProperties": False,
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (429, 503); also the Retry-After header."},
    },
    "required": ["error"],
    "additionalProperties": False,
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def errors() -> dict:
    return {
        code: OpenApiResponse(ERROR_REF, description=text)
        for code, text in (
            (400, "Invalid query or body"),
            (401, "No API key, or an unknown, revoked or expired one"),
            (403, "The key lacks this endpoint's scope"),
            (404, "Not this key's organization, or no such app or object"),
            (429, "Too many requests for this key this minute (Retry-After)"),
        )
    }


def ok(schema: dict) -> dict:
    return {200: OpenApiResponse(schema), **errors()}


def created(schema: dict) -> dict:
    return {201: OpenApiResponse(schema), **errors()}


def analytics(**properties) -> dict:
    """An analytics answer: the range in effect and the filters, then the figures."""
    return obj(range=RANGE_SCHEMA, filters=FILTERS_SCHEMA, **properties)


# --- Resources ---------------------------------------------------------------------------------

ORGANIZATION = obj(
    id=STRING, name=STRING, tier=STRING, is_active=BOOLEAN,
    retention_days={**INTEGER, "nullable": True, "description": "Default retention; null keeps events forever."},
    created_at=DATETIME,
)  # fmt: skip
USAGE = {
    "type": "object",
    "description": "This UTC month's new events against the plan's quota (Plans and limits); quota null: no quota.",
    "properties": {
        "month": {"type": "string", "format": "date"},
        "events": {**INTEGER, "nullable": True},
        "quota": {**INTEGER, "nullable": True},
        "resets_at": DATETIME,
    },
    "required": ["month", "events", "quota", "resets_at"],
    "additionalProperties": False,
}
ORGANIZATION_DETAIL = {**ORGANIZATION, "properties": {**ORGANIZATION["properties"], "usage": USAGE},
                       "required": [*ORGANIZATION["required"], "usage"]}  # fmt: skip


def usage_json(usage) -> dict:
    return {
        "month": usage.month.isoformat(),
        "events": usage.used,
        "quota": usage.quota,
        "resets_at": usage.resets_at.isoformat().replace("+00:00", "Z"),
    }


APP = obj(
    id=STRING, organization_id=STRING, name=STRING, is_active=BOOLEAN,
    retention_days={**INTEGER, "nullable": True, "description": "Retention in effect; null keeps events forever."},
    retention_override=BOOLEAN, ingest_path=STRING, created_at=DATETIME,
    last_received_at={**DATETIME, "nullable": True, "description": "When its newest event (by timestamp) arrived."},
)  # fmt: skip
APP_CREATE = obj(name={**STRING, "minLength": 1, "maxLength": 100})
APP_UPDATE = {
    "type": "object",
    "properties": {"name": {**STRING, "minLength": 1, "maxLength": 100}, "is_active": BOOLEAN},
    "additionalProperties": False,
}
CREDENTIAL = obj(
    id=INTEGER, token_prefix=STRING, active=BOOLEAN, created_at=DATETIME, revoked_at={**DATETIME, "nullable": True}
)
ISSUED_CREDENTIAL = {
    **CREDENTIAL,
    "description": "Shown once: the secret can be revealed again in the dashboard, the token never.",
    "properties": {**CREDENTIAL["properties"], "secret": STRING, "token": STRING},
    "required": [*CREDENTIAL["required"], "secret", "token"],
}
APP_WITH_CREDENTIALS = obj(app=APP, credentials=ISSUED_CREDENTIAL)
RETENTION_POLICY = obj(
    inherit=BOOLEAN, days={**INTEGER, "nullable": True}, effective_days={**INTEGER, "nullable": True},
    organization_days={**INTEGER, "nullable": True}, events_past_retention=INTEGER,
    last_ran_at={**DATETIME, "nullable": True},
)  # fmt: skip
RETENTION_POLICY_SET = {
    "type": "object",
    "properties": {
        "inherit": {**BOOLEAN, "description": "Follow the organization's default retention."},
        "days": {**INTEGER, "nullable": True, "minimum": 1, "maximum": 36500, "description": "null: keep forever."},
    },
    "additionalProperties": False,
}

SUMMARY = {"summary": ref(stats.Summary), "has_events": BOOLEAN, "last_event_at": {**DATETIME, "nullable": True}}
SUMMARY_ORG = {**SUMMARY, "apps": array(ref(stats.AppActivity))}
TIMESERIES = {"buckets": array(ref(stats.Bucket))}
BREAKDOWNS = {"breakdowns": array(ref(stats.Breakdown))}
COMMANDS = {"commands": ref(stats.CommandStats), "top": array(ref(stats.CommandRow))}
RELEASES = {
    "has_events": BOOLEAN,
    "users": nullable(ref(releases.DailyUsers)),
    "versions": nullable(ref(releases.VersionTable)),
    "rollout": nullable(ref(releases.Rollout)),
    "old": nullable(ref(releases.OldVersions)),
}
HEALTH = {"health": ref(health.ReleaseHealth)}
COMMAND_HEALTH = {"command": STRING, "detail": nullable(ref(health.CommandDetail))}
RETENTION = {"retention": nullable(ref(activity.Retention))}
PLATFORMS = {"platforms": ref(platforms.Platforms)}
PROPERTIES = {"properties": ref(properties.Report)}
FUNNEL = obj(id=INTEGER, name=STRING, steps=array(ref(funnels.Step)), window_seconds=INTEGER)
FUNNEL_RESULT = {"funnel": FUNNEL, "result": ref(funnels.FunnelResult)}

EVENT = {
    "type": "object",
    "description": "An event in the shape the SDK sent it (docs/protocol.md), plus received_at.",
    "properties": {
        "schema_version": STRING, "event_id": {**STRING, "format": "uuid"}, "timestamp": DATETIME,
        "service": {"type": "object", "additionalProperties": STRING},
        "user_id": STRING, "session_id": STRING,
        "environment": {"type": "object", "additionalProperties": {"anyOf": [STRING, BOOLEAN]}},
        "event": {"type": "object", "properties": {"type": STRING, "category": STRING, "data": {}}, "required": ["type", "data"]},
        "metadata": {"type": "object", "properties": {"sdk_version": STRING}},
        "received_at": DATETIME,
    },
    "required": ["schema_version", "event_id", "timestamp", "service", "user_id", "environment", "event", "metadata", "received_at"],
    "additionalProperties": False,
}  # fmt: skip
EVENT_PAGE = obj(
    events=array(EVENT),
    next={**STRING, "nullable": True, "description": "Pass as `before` for older events; null on the last page."},
    previous={**STRING, "nullable": True, "description": "Pass as `after` for newer events; null on the first page."},
)
