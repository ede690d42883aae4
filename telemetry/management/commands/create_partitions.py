from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from telemetry import partitions


class Command(BaseCommand):
    help = (
        "Create the events table's time partitions for the current interval and the next ones "
        "(PostgreSQL; nothing to do on SQLite). The scheduler does this hourly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=3, help="Intervals to create past the current one (default 3).")

    def handle(self, *, ahead: int, **options) -> str:
        if ahead < 0:
            raise CommandError("--ahead must be 0 or more.")
        if not partitions.is_partitioned():
            return "The events table is not partitioned here (SQLite); nothing to do."
        created = partitions.ensure_partitions(now=timezone.now(), ahead=ahead)
        for name in created:
            self.stdout.write(f"created {name}")
        existing = partitions.existing_partitions()
        return f"Done: {len(created)} created; {len(existing)} partitions, up to {existing[-1].end if existing else '-'}."
