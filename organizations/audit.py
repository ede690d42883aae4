"""The audit log as people read it: one sentence per entry, a link to what it was
about, filters by kind of action and by person (templates/organizations/audit.html).

Entries keep raw values (organizations.services.record_audit); the words are made
here, when the page is shown, so old entries read as well as new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse

from organizations.models import App, AuditEntry, Organization, Role, Tier

# The action filter: a kind of action and the prefixes of its codes.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "apps": ("Apps", ("app.",)),
    "credentials": ("Credentials", ("credentials.",)),
    "members": ("Members and invitations", ("member.", "invitation.")),
    "organization": ("Organization settings", ("organization.",)),
    "retention": ("Retention", ("retention.",)),
    "data": ("Exports and erasures", ("events.", "user.")),
    "alerts": ("Alerts", ("alert_rule.", "alert_channel.")),
    "funnels": ("Funnels", ("funnel.",)),
}
SYSTEM = "system"  # the person filter's value for entries without a person (commands, jobs)


@dataclass(frozen=True)
class Line:
    """One entry in words: "{actor} {before}{target}{after}", the target linked when it still exists."""

    entry: AuditEntry
    actor: str
    before: str
    target: str = ""
    after: str = ""
    url: str | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)  # unknown actions: their raw details

    @property
    def sentence(self) -> str:
        return f"{self.actor} {self.before}{self.target}{self.after}"


def filter_entries(
    organization: Organization, *, kind: str = "", person: str = ""
) -> QuerySet[AuditEntry]:
    """The organization's entries, newest first, of one kind (KINDS) and/or one person
    (a user's pk, or SYSTEM); an unknown kind or person is ignored."""
    entries = AuditEntry.objects.filter(organization=organization).select_related("actor")
    if kind in KINDS:
        match = Q()
        for prefix in KINDS[kind][1]:
            match |= Q(action__startswith=prefix)
        entries = entries.filter(match)
    if person == SYSTEM:
        entries = entries.filter(actor__isnull=True)
    elif person.isdigit():
        entries = entries.filter(actor_id=int(person))
    return entries


def people(organization: Organization) -> list[tuple[str, str]]:
    """(value, name) of everyone who appears in the organization's log, for the person filter."""
    ids = (
        AuditEntry.objects.filter(organization=organization, actor__isnull=False)
        .values_list("actor_id", flat=True)
        .distinct()
        .order_by()
    )
    users = get_user_model().objects.filter(pk__in=ids).order_by("username")
    return [(str(user.pk), person_name(user)) for user in users] + [(SYSTEM, "The system (commands and jobs)")]


def person_name(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "The system"


def lines(organization: Organization, entries: Iterable[AuditEntry]) -> list[Line]:
    """Each entry as a sentence; one query for the apps the entries link to."""
    entries = list(entries)
    apps = {app.public_id: app for app in App.objects.filter(organization=organization)}
    return [_line(organization, entry, apps) for entry in entries]


# --- Words -----------------------------------------------------------------------------------


def _url(name: str, **kwargs) -> str | None:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def _role(value) -> str:
    try:
        return Role(value).label.lower()
    except ValueError:
        return str(value)


def _retention(days) -> str:
    if days is None:
        return "forever"
    return f"{days} day{'' if days == 1 else 's'}"


def _app_retention(value) -> str:
    if not isinstance(value, dict) or not value.get("override"):
        return "the organization's default"
    return _retention(value.get("days"))


def _plain(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _org_changes(details: dict) -> str:
    parts = []
    for name, change in sorted(details.items()):
        if not isinstance(change, dict):
            continue
        old, new = change.get("from"), change.get("to")
        if name == "is_active":
            parts.append("enabled the organization" if new else "disabled the organization (ingest refuses every app)")
        elif name == "tier":
            label = {value: label for value, label in Tier.choices}
            parts.append(f"changed the organization's plan from {label.get(old, old)} to {label.get(new, new)}")
        else:
            parts.append(f"changed the organization's {name.replace('_', ' ')} from “{_plain(old)}” to “{_plain(new)}”")
    return " and ".join(parts) or "changed the organization's settings"


def _line(organization: Organization, entry: AuditEntry, apps: dict[str, App]) -> Line:
    action, details = entry.action, entry.details if isinstance(entry.details, dict) else {}
    actor = person_name(entry.actor)
    org_id = organization.public_id
    app = apps.get(entry.target) or apps.get(str(details.get("app", "")))
    app_name = app.name if app else str(details.get("name") or entry.target)
    app_url = _url("dashboard:app_overview", org_id=org_id, app_id=app.public_id) if app else None
    members_url = _url("organizations:members", org_id=org_id)
    settings_url = _url("dashboard:org_settings", org_id=org_id)
    prefix = details.get("token_prefix", "")

    def about_app(before: str, after: str = "", url: str | None = app_url) -> Line:
        return Line(entry, actor, before, app_name, after, url)

    def credentials_url() -> str | None:
        return _url("dashboard:app_credentials", org_id=org_id, app_id=app.public_id) if app else None

    words: dict[str, Callable[[], Line]] = {
        "app.create": lambda: about_app("created the app "),
        "app.rename": lambda: Line(
            entry, actor, f"renamed the app “{details.get('from', '')}” to ", str(details.get("to", app_name)), "", app_url
        ),
        "app.enable": lambda: about_app("enabled the app ", ": it accepts events again"),
        "app.disable": lambda: about_app("disabled the app ", ": it refuses new events"),
        "app.delete": lambda: about_app(
            "deleted the app ", f" and its {details.get('events', 0):,} event{'' if details.get('events') == 1 else 's'}", None
        ),
        "credentials.rotate": lambda: about_app(f"issued new credentials (token {prefix}…) for ", "", credentials_url()),
        "credentials.revoke": lambda: about_app(f"revoked the credentials {prefix}… of ", "", credentials_url()),
        "credentials.reveal": lambda: about_app(f"revealed the secret of {prefix}… of ", "", credentials_url()),
        "organization.create": lambda: Line(entry, actor, "created the organization ", organization.name, "", settings_url),
        "organization.update": lambda: Line(entry, actor, _org_changes(details), "", "", None),
        "retention.organization": lambda: Line(
            entry, actor, "changed the organization's ", "default retention",
            f" from {_retention(details.get('from'))} to {_retention(details.get('to'))}", settings_url,
        ),
        "retention.app": lambda: about_app(
            "changed the retention of ",
            f" from {_app_retention(details.get('from'))} to {_app_retention(details.get('to'))}",
            _url("dashboard:app_settings", org_id=org_id, app_id=app.public_id) if app else None,
        ),
        "invitation.create": lambda: Line(
            entry, actor, "invited ", entry.target, f" to join as {_role(details.get('role'))}", members_url
        ),
        "invitation.accept": lambda: Line(
            entry, actor, "accepted ", "an invitation", f" and joined as {_role(details.get('role'))}", members_url
        ),
        "invitation.revoke": lambda: Line(entry, actor, "revoked the invitation for ", entry.target, "", members_url),
        "member.add": lambda: Line(entry, actor, "added ", entry.target, f" as {_role(details.get('role'))}", members_url),
        "member.role": lambda: Line(
            entry, actor, "changed ", entry.target,
            f"'s role from {_role(details.get('from'))} to {_role(details.get('to'))}", members_url,
        ),
        "member.remove": lambda: Line(
            entry, actor, "removed ", entry.target, f" (they were {_role(details.get('role'))})", members_url
        ),
        "events.export": lambda: about_app(
            "exported the events of ",
            f" as {details.get('format', 'a file')}"
            + (f", from {details['from'][:10]}" if details.get("from") else "")
            + (f" to {details['to'][:10]}" if details.get("to") else ""),
        ),
        "user.erase": lambda: Line(
            entry, actor, "erased every event of one user ",
            f"({entry.target.removeprefix('user ')})", f": {details.get('events', 0):,} events", None,
        ),
        "funnel.create": lambda: about_app(f"created the funnel “{details.get('funnel', '')}” in ", "", _funnels(org_id, app)),
        "funnel.update": lambda: about_app(f"changed the funnel “{_funnel_name(details)}” of ", "", _funnels(org_id, app)),
        "funnel.delete": lambda: about_app(f"deleted the funnel “{details.get('funnel', '')}” of ", "", _funnels(org_id, app)),
        "alert_rule.create": lambda: _rule(entry, actor, "created the alert rule ", org_id, app),
        "alert_rule.update": lambda: _rule(entry, actor, "changed the alert rule ", org_id, app),
        "alert_rule.delete": lambda: _rule(entry, actor, "deleted the alert rule ", org_id, app, link=False),
        "alert_channel.create": lambda: _channel(entry, actor, "created the alert channel ", org_id),
        "alert_channel.update": lambda: _channel(entry, actor, "changed the alert channel ", org_id),
        "alert_channel.enable": lambda: _channel(entry, actor, "turned the alert channel ", org_id, " back on"),
        "alert_channel.delete": lambda: _channel(entry, actor, "deleted the alert channel ", org_id, link=False),
    }
    if action in words:
        return words[action]()
    # An action this page has no words for yet: its code and raw details, readable.
    extra = [(str(key).replace("_", " "), _plain(value)) for key, value in sorted(details.items())]
    return Line(entry, actor, f"did “{action.replace('.', ' ').replace('_', ' ')}” on ", entry.target or "the organization", "", None, extra)


def _funnel_name(details: dict) -> str:
    """The funnel's name after the change (an update records only what changed)."""
    name = details.get("name")
    if isinstance(name, dict):
        return str(name.get("to", ""))
    return str(details.get("funnel") or "")


def _funnels(org_id: str, app: App | None) -> str | None:
    return _url("dashboard:funnels", org_id=org_id, app_id=app.public_id) if app else None


def _rule(entry: AuditEntry, actor: str, before: str, org_id: str, app: App | None, link: bool = True) -> Line:
    url = _url("alerts:rules", org_id=org_id, app_id=app.public_id) if app and link else None
    return Line(entry, actor, before, f"“{entry.target}”", f" of {app.name}" if app else "", url)


def _channel(entry: AuditEntry, actor: str, before: str, org_id: str, after: str = "", link: bool = True) -> Line:
    url = _url("alerts:channels", org_id=org_id) if link else None
    return Line(entry, actor, before, f"“{entry.target}”", after, url)
