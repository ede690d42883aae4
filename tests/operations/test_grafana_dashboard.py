"""docker/grafana: the dashboard's queries use metrics the server exports, and the
compose file mounts it beside Prometheus (README, Metrics)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def test_every_dashboard_query_uses_metrics_the_server_exports(client, db):
    exported = client.get("/metrics").content.decode()
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "clacks.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b((?:clacks|django)_[a-z_]+)", expr)}
    assert {"clacks_ingest_duration_seconds_bucket", "clacks_db_connections", "clacks_postgres_connections_headroom",
            "clacks_db_slow_queries_total", "clacks_scheduler_job_lag_seconds"} <= used  # fmt: skip
    for name in used:
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert f"# TYPE {base} " in exported or f"# TYPE {name} " in exported, name


def test_grafana_and_jaeger_are_optional_compose_services():
    services = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())["services"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in services["grafana"]["volumes"]
    assert services["jaeger"]["profiles"] == ["tracing"]
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
