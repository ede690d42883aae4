from datetime import date

from django.core.management.base import BaseCommand, CommandError

from telemetry import archive
from telemetry.management.commands._apps import selected_apps


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{name} takes a day as YYYY-MM-DD, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Load archived events (docs/archive.md) back into their apps, from CLACKS_ARCHIVE_DIR or the "
        "CLACKS_ARCHIVE_S3_* bucket. Events already stored are skipped, so it is safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("app_ids", nargs="+", metavar="APP_ID", help="Public app ids (app_…) to restore.")
        parser.add_argument("--from", dest="first", help="First UTC day to restore (YYYY-MM-DD, included).")
        parser.add_argument("--to", dest="last", help="Last UTC day to restore (YYYY-MM-DD, included).")

    def handle(self, *, app_ids: list[str], first: str | None, last: str | None, **options) -> str:
        first_day, last_day = _day(first, "--from"), _day(last, "--to")
        if first_day and last_day and last_day < first_day:
            raise CommandError("--to is before --from.")
        store = archive.configured_store()
        files = rows = stored = 0
        for app in selected_apps(app_ids).select_related("organization"):
            try:
                result = archive.restore_app(app, store=store, first=first_day, last=last_day, write=self.stdout.write)
            except archive.ArchiveError as error:
                raise CommandError(f"{app.public_id}: {error}") from None
            files, rows, stored = files + result.files, rows + result.rows, stored + result.stored
        return f"Done: {files} files, {rows} archived events, {stored} restored (the rest were already stored)."
