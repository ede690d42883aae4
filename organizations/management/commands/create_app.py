import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from organizations.endpoints import public_url
from organizations.models import Organization
from organizations.services import create_app, create_organization


class Command(BaseCommand):
    help = "Create an application (and its organization if needed) and print its credentials."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization name or org_id; created if no such name exists.")
        parser.add_argument("--app", required=True, help="Application name.")
        parser.add_argument("--json", action="store_true", help="Print a JSON object instead of text.")

    def handle(self, *, org: str, app: str, json: bool, **options):
        name = app.strip()
        if not name or len(name) > 100 or not org.strip() or len(org.strip()) > 100:
            raise CommandError("--org and --app must be 1 to 100 characters.")
        organization = (
            Organization.objects.filter(public_id=org.strip()).first()
            or Organization.objects.filter(name=org.strip()).order_by("pk").first()
            or create_organization(name=org.strip())
        )
        new_app, issued = create_app(organization=organization, name=name)
        endpoint = public_url()  # CLACKS_PUBLIC_URL, else http://127.0.0.1:$PORT
        result = {
            "org_id": organization.public_id,
            "app_id": new_app.public_id,
            "secret": issued.secret,
            "token": issued.token,
            "ingest_url": endpoint + new_app.ingest_path,
            "endpoint": endpoint,
        }
        if json:
            self.stdout.write(_dumps(result))
            return
        self.stdout.write(f"Created {new_app.name} in {organization.name}.\n")
        width = max(map(len, result))
        for key, value in result.items():
            self.stdout.write(f"  {key.ljust(width)}  {value}")
        self.stdout.write("\nThe secret and token are shown once; keep them somewhere safe.")


def _dumps(value) -> str:
    return jsonlib.dumps(value, indent=2)
