"""What the per-app commands share: turning public app ids into apps."""

from django.core.management.base import CommandError
from django.db.models import QuerySet

from organizations.models import App

APP_IDS_HELP = "Public app ids (app_…); all apps when none are given."


def selected_apps(app_ids: list[str]) -> QuerySet[App]:
    """The apps with these public ids (all apps when none), or CommandError naming the unknown ones."""
    apps = App.objects.order_by("pk")
    if not app_ids:
        return apps
    apps = apps.filter(public_id__in=app_ids)
    missing = set(app_ids) - set(apps.values_list("public_id", flat=True))
    if missing:
        raise CommandError(f"No app with id {', '.join(sorted(missing))}.")
    return apps
