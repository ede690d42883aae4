import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError

from organizations.models import App
from telemetry import daily, sketches
from telemetry.management.commands._apps import APP_IDS_HELP, selected_apps

logger = logging.getLogger(__name__)


@dataclass
class RefreshSummary:
    built: int = 0  # sketches built
    failed: list[str] = field(default_factory=list)  # public ids of the apps that failed


def refresh_apps(apps: Iterable[App], *, write: Callable[[str], None] | None = None) -> RefreshSummary:
    """Bring each app's daily rollups and sketches up to date; one app failing is
    logged and the others still run. The scheduler's rollups job and this command
    share it. `write` gets a line for each app that had sketches to build."""
    summary = RefreshSummary()
    for app in apps:
        started = time.monotonic()
        try:
            daily.refresh(app.pk)
            count = sketches.refresh(app.pk)
        except Exception:
            logger.exception("refreshing daily rollups and sketches failed for %s", app.public_id)
            summary.failed.append(app.public_id)
            continue
        summary.built += count
        if count and write is not None:
            write(f"{app.public_id}: {count} sketches built in {time.monotonic() - started:.1f} s")
    return summary


class Command(BaseCommand):
    help = (
        "Bring the daily rollups and the daily sketches of distinct users and sessions up to date, "
        "so that analytics pages over long ranges do not have to. The scheduler runs it hourly."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_ids", nargs="*", help=APP_IDS_HELP)

    def handle(self, *, app_ids: list[str], **options) -> str:
        result = refresh_apps(selected_apps(app_ids), write=self.stdout.write if options["verbosity"] >= 1 else None)
        if result.failed:
            raise CommandError(f"{len(result.failed)} apps failed; {result.built} sketches built.")
        return f"Done: {result.built} sketches built."
