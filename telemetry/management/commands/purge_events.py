import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from organizations.models import App
from telemetry import partitions, retention
from telemetry.auth import prune_nonces

logger = logging.getLogger(__name__)


@dataclass
class PurgeSummary:
    deleted: int = 0
    failed: list[str] = field(default_factory=list)  # public ids of the apps that failed
    nonces: int | None = None  # None: not pruned (dry run)


def purge_apps(
    apps: Iterable[App],
    *,
    now: datetime,
    batch_size: int = retention.DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    write: Callable[[str], None] | None = None,
) -> PurgeSummary:
    """Delete each app's events past its retention, then the expired nonces; one
    app failing is logged and the others still run. The scheduler's retention job
    and this command share it. `write` gets one line of progress at a time."""
    write = write or (lambda line: None)
    summary = PurgeSummary()
    for app in apps:
        days = app.effective_retention_days
        keep = "kept forever" if days is None else f"retention {days} days"
        try:
            result = retention.prune_app(
                app,
                now=now,
                batch_size=batch_size,
                dry_run=dry_run,
                progress=lambda n, app=app: write(f"{app.public_id}: {n} deleted so far"),
            )
        except Exception:
            # One app's failure must not stop the others from being pruned.
            logger.exception("purging events of %s failed", app.public_id)
            summary.failed.append(app.public_id)
            continue
        summary.deleted += result.deleted
        verb = "would delete" if dry_run else "deleted"
        write(f"{app.public_id} ({keep}): {verb} {result.deleted} events")
    if not dry_run:
        summary.nonces = prune_nonces(now=now)
    return summary


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
        if not dry_run and not app_ids:
            # Whole partitions past every app's retention go first (PostgreSQL):
            # dropping a table is far cheaper than deleting its rows.
            for name in partitions.drop_expired_partitions(now=now):
                self.stdout.write(f"dropped partition {name}")
        result = purge_apps(apps, now=now, batch_size=batch_size, dry_run=dry_run, write=self.stdout.write)
        if dry_run:
            nonces = "nonces not pruned (dry run)"
        else:
            nonces = f"{result.nonces} expired nonces pruned"
        summary = f"Done: {result.deleted} events {'would be deleted (dry run)' if dry_run else 'deleted'}; {nonces}."
        if result.failed:
            # A non-zero exit, so cron or the systemd timer reports it.
            raise CommandError(f"{summary} {len(result.failed)} apps failed; see the log above.")
        return summary
