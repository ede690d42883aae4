import logging

from django.core.management.base import BaseCommand, CommandError

from telemetry import daily, sketches, storage
from telemetry.management.commands._apps import APP_IDS_HELP, selected_apps

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Recompute what is derived from apps' raw events (event keys and rollups, then daily rollups and sketches)."

    def add_arguments(self, parser):
        parser.add_argument("app_ids", nargs="*", help=APP_IDS_HELP)

    def handle(self, *, app_ids: list[str], **options) -> str:
        apps = selected_apps(app_ids)
        done = failed = 0
        for app in apps:
            try:
                storage.rebuild_derived(app.pk)
                # A rebuild drops the caches derived from the rollups; build them again now.
                daily.refresh(app.pk)
                sketches.refresh(app.pk)
            except Exception:
                logger.exception("rebuilding rollups failed for %s", app.public_id)
                failed += 1
                continue
            done += 1
            self.stdout.write(f"{app.public_id}: rebuilt")
        if done:
            storage.vacuum_rollup_deltas()
        if failed:
            raise CommandError(f"{failed} apps failed; {done} rebuilt.")
        return f"Done: {done} apps rebuilt."
