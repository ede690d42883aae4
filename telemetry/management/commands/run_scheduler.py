import logging
import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telemetry import scheduler

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (time partitions, retention, daily rollups) when due, forever. "
        "Any number may run against one database: each run is claimed by exactly one. "
        "gunicorn starts one by itself unless CLACKS_SCHEDULER=off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run every job that is due once, then exit (cron).")
        parser.add_argument(
            "--with-server",
            action="store_true",
            help="As started by gunicorn (config/gunicorn.py): exit at once when CLACKS_SCHEDULER is off, "
            "and when the server that started it is gone.",
        )

    def handle(self, *, once: bool, with_server: bool, **options) -> str | None:
        if with_server and not settings.CLACKS_SCHEDULER:
            logger.info("built-in scheduler off (CLACKS_SCHEDULER=off): run manage.py run_scheduler elsewhere")
            return None
        jobs = scheduler.jobs()
        runner = scheduler.Runner(jobs, parent_pid=os.getppid() if with_server else None)
        if once:
            outcomes = runner.run_due()
            for outcome in outcomes:
                self.stdout.write(f"{outcome.job}: {outcome.status}{f' ({outcome.detail})' if outcome.detail else ''}")
            failed = [outcome.job for outcome in outcomes if outcome.status == "failed"]
            if failed:
                # A non-zero exit, so cron reports it.
                raise CommandError(f"{', '.join(failed)} failed; see the log above.")
            return f"Done: {sum(outcome.status == 'done' for outcome in outcomes)} jobs ran."
        runner.stop_on_signals()
        logger.info(
            "scheduler started: %s", ", ".join(f"{job.name} every {scheduler.period_text(job.period)}" for job in jobs), extra={"pid": os.getpid()}
        )
        runner.run_forever()
        logger.info("scheduler stopped")
        return None
