import logging

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from organizations.models import App
from telemetry import partitions, retention
from telemetry.auth import prune_nonces

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Delete events older than each app's retention period, in bounded batches, "
        "and expired replay-protection nonces. Safe to run while another run is going."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.DEFAULT_BATCH_SIZE,
            help=f"Events deleted per transaction (default {retention.DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--app", dest="app_ids", action="append", default=[], help="Only this app_id (repeatable).")

    def handle(self, *, dry_run: bool, batch_size: int, app_ids: list[str], **options) -> str:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        now = timezone.now()
        apps = App.objects.select_related("organization").order_by("pk")
        if app_ids:
            apps = apps.filter(public_id__in=app_ids)
            missing = set(app_ids) - set(apps.values_list("public_id", flat=True))
            if missing:
                raise CommandError(f"No app with id {', '.join(sorted(missing))}.")
        total = failed = 0
        if not dry_run and not app_ids:
            # Whole partitions past every app's retention go first (PostgreSQL):
            # dropping a table is far cheaper than deleting its rows.
            for name in partitions.drop_expired_partitions(now=now):
                self.stdout.write(f"dropped partition {name}")
        for app in apps:
            days = app.effective_retention_days
            keep = "kept forever" if days is None else f"retention {days} days"
            try:
                result = retention.prune_app(
                    app,
                    now=now,
                    batch_size=batch_size,
                    dry_run=dry_run,
                    progress=lambda n, app=app: self.stdout.write(f"{app.public_id}: {n} deleted so far"),
                )
            except Exception:
                # One app's failure must not stop the others from being pruned.
                logger.exception("purging events of %s failed", app.public_id)
                failed += 1
                continue
            total += result.deleted
            verb = "would delete" if dry_run else "deleted"
            self.stdout.write(f"{app.public_id} ({keep}): {verb} {result.deleted} events")
        if dry_run:
            nonces = "nonces not pruned (dry run)"
        else:
            nonces = f"{prune_nonces(now=now)} expired nonces pruned"
        summary = f"Done: {total} events {'would be deleted (dry run)' if dry_run else 'deleted'}; {nonces}."
        if failed:
            # A non-zero exit, so cron or the systemd timer reports it.
            raise CommandError(f"{summary} {failed} apps failed; see the log above.")
        return summary
