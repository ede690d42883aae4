from django.apps import AppConfig
from django.db.backends.signals import connection_created


class TelemetryConfig(AppConfig):
    name = "telemetry"

    def ready(self) -> None:
        from config.logs import install_query_timer

        # Every connection times its queries: per-request database time in the
        # request log, and the slow-query log (CLACKS_SLOW_QUERY_MS).
        connection_created.connect(install_query_timer, dispatch_uid="clacks_query_timer")

        from telemetry import dbmetrics, metrics

        # Connections per process and in total, PostgreSQL's headroom, the replica's lag.
        dbmetrics.connect_signals()
        metrics.add_scrape_observer(dbmetrics.observe)
