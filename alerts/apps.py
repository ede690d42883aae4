from datetime import timedelta

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # telemetry may not import alerts (README, Layout): alerts hands its jobs and
        # its /metrics gauges to telemetry's registries instead.
        from alerts import delivery, digest, metrics, rules
        from telemetry import metrics as telemetry_metrics
        from telemetry import scheduler

        # Every minute: a run evaluates each active rule at most once per minute (rules.evaluate_rules).
        scheduler.add_job(scheduler.Job("alerts", timedelta(minutes=1), rules.evaluate_job, lease=timedelta(minutes=5)))
        # Every 5 s: stored notifications are sent here, never inside a web request. A run
        # stops taking new ones after delivery.RUN_BUDGET; the lease covers one more call.
        scheduler.add_job(scheduler.Job("deliveries", timedelta(seconds=5), delivery.deliver_job, lease=timedelta(minutes=2)))
        # Hourly: each organization's digest of the last whole week, once (alerts.digest).
        scheduler.add_job(scheduler.Job("digest", timedelta(hours=1), digest.digest_job, lease=timedelta(minutes=30)))
        telemetry_metrics.add_scrape_observer(metrics.observe_notifications)
