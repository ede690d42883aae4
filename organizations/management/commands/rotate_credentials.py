from django.core.management.base import BaseCommand, CommandError

from organizations.models import App
from organizations.services import rotate_credentials


class Command(BaseCommand):
    help = "Issue a new HMAC secret and API token for an app; the previous set stays valid until revoked."

    def add_arguments(self, parser):
        parser.add_argument("app_id", help="The app's public id (app_…).")

    def handle(self, *, app_id: str, **options):
        app = App.objects.select_related("organization").filter(public_id=app_id).first()
        if app is None:
            raise CommandError(f"No app with id {app_id!r}.")
        issued = rotate_credentials(app)
        self.stdout.write(f"New credentials for {app.name} ({app.public_id}):")
        self.stdout.write(f"  secret  {issued.secret}")
        self.stdout.write(f"  token   {issued.token}")
        self.stdout.write("The previous set stays valid until you revoke it in the dashboard.")
