from django.core.management.base import BaseCommand, CommandError

from organizations.models import Organization
from telemetry import lifecycle


class Command(BaseCommand):
    help = "Delete every event of one user id in every app of an organization (a GDPR erasure request)."

    def add_arguments(self, parser):
        parser.add_argument("org_id", help="The organization's public id (org_…).")
        parser.add_argument("user_id", help="The SDK's anonymous user id (client_…), exactly as stored.")
        parser.add_argument("--dry-run", action="store_true", help="Count the events that would go; delete nothing.")
        parser.add_argument("--batch-size", type=int, default=lifecycle.DELETE_BATCH_SIZE, help="Events deleted per transaction.")

    def handle(self, *, org_id: str, user_id: str, dry_run: bool, batch_size: int, **options) -> str:
        organization = Organization.objects.filter(public_id=org_id).first()
        if organization is None:
            raise CommandError(f"No organization with id {org_id!r}.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            result = lifecycle.erase_user(
                organization, user_id=user_id, via="command", dry_run=dry_run, batch_size=batch_size
            )
        except lifecycle.LifecycleError as exc:
            raise CommandError(str(exc)) from None
        verb = "would be deleted" if dry_run else "deleted"
        names = dict(organization.apps.values_list("public_id", "name"))
        for public_id, count in result.per_app.items():
            self.stdout.write(f"{public_id} ({names.get(public_id, '?')}): {count} events {verb}")
        if dry_run:
            return f"Dry run: {result.total} events of this user in {organization.public_id}; nothing deleted."
        return f"Erased {result.total} events of this user in {organization.public_id}; audit record written."
