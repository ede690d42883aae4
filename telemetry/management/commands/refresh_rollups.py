import logging
import time

from django.core.management.base import BaseCommand, CommandError

from telemetry import daily, sketches
from telemetry.management.commands._apps import APP_IDS_HELP, selected_apps

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Bring the daily rollups and the daily sketches of distinct users and sessions up to date, "
        "so that analytics pages over long ranges do not have to. Run it from the scheduler."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_ids", nargs="*", help=APP_IDS_HELP)

    def handle(self, *, app_ids: list[str], **options) -> str:
        apps = selected_apps(app_ids)
        built = failed = 0
        for app in apps:
            started = time.monotonic()
            try:
                daily.refresh(app.pk)
                count = sketches.refresh(app.pk)
            except Exception:
                logger.exception("refreshing daily rollups and sketches failed for %s", app.public_id)
                failed += 1
                continue
            built += count
            if count and options["verbosity"] >= 1:
                self.stdout.write(f"{app.public_id}: {count} sketches built in {time.monotonic() - started:.1f} s")
        if failed:
            raise CommandError(f"{failed} apps failed; {built} sketches built.")
        return f"Done: {built} sketches built."
