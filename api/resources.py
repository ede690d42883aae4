"""How organizations and apps look in the REST API's answers."""

from __future__ import annotations

from api.shapes import to_json
from organizations.models import App, Organization


def organization_json(organization: Organization) -> dict:
    return {
        "id": organization.public_id,
        "name": organization.name,
        "tier": organization.tier,
        "is_active": organization.is_active,
        "retention_days": organization.retention_days,
        "created_at": to_json(organization.created_at),
    }


def app_json(app: App, *, last_received_at=None) -> dict:
    return {
        "id": app.public_id,
        "organization_id": app.organization.public_id,
        "name": app.name,
        "is_active": app.is_active,
        "retention_days": app.effective_retention_days,
        "retention_override": app.retention_override,
        "ingest_path": app.ingest_path,
        "created_at": to_json(app.created_at),
        "last_received_at": to_json(last_received_at),
    }
