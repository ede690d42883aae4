from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "organizations"

    def ready(self) -> None:
        # Records each sign-in in the user's session list (signal receivers).
        from organizations import sessions  # noqa: F401
