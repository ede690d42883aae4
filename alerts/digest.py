"""The weekly digest per organization: for each app, last week's events and users,
top commands, failure rate and the newest version's adoption, from the same reads as
the pages (dashboard.stats, dashboard.releases). Sent once per organization and week,
after the week (Monday to Sunday, UTC) is over, to the channels that asked for it and
to the members who subscribed (their own email)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.urls import reverse

from alerts.models import Channel, Digest, DigestSubscription, Notification
from dashboard import releases, stats
from dashboard.filters import Filters
from organizations.endpoints import public_url
from organizations.models import App, Organization

logger = logging.getLogger(__name__)

TOP_COMMANDS = 5


def last_week(now: datetime) -> tuple[date, stats.Period]:
    """The Monday and the period of the last whole UTC week before `now`."""
    today = now.date()
    monday = today - timedelta(days=today.weekday() + 7)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=now.tzinfo)
    return monday, stats.Period(start=start, end=start + timedelta(days=7))


def app_figures(app: App, period: stats.Period) -> dict:
    ids = [app.pk]
    summary = stats.summary(ids, period=period)
    commands = stats.command_stats(ids, period=period)
    last_day = (period.end - timedelta(days=1)).date()
    history = releases.history(ids, filters=Filters(), today=last_day)
    week = releases.window(ids, filters=Filters(), today=last_day)
    newest = history.newest
    adoption = round(week.ran(newest) * 100 / week.users, 1) if newest and week.users else None
    failure = round(100 - commands.success_rate, 1) if commands.success_rate is not None else None
    return {
        "id": app.public_id,
        "name": app.name,
        "events": summary.events.current,
        "users": summary.users.current,
        "failure_rate": failure,
        "top_commands": [
            {"command": row.command, "runs": row.runs,
             "failure_rate": round(100 - row.success_rate, 1) if row.success_rate is not None else None}
            for row in stats.top_commands(ids, period=period, limit=TOP_COMMANDS)
        ],
        "newest_version": newest,
        "newest_version_users_percent": adoption,
    }  # fmt: skip


def digest_text(organization: Organization, monday: date, apps: list[dict]) -> str:
    lines = [f"{organization.name}: the week of {monday:%d %b %Y} (UTC)", ""]
    for app in apps:
        lines.append(f"{app['name']}: {app['events']} events, {app['users']} users"
                     + (f", {app['failure_rate']} % of command runs failed" if app["failure_rate"] is not None else ""))
        if app["newest_version"]:
            share = f" ({app['newest_version_users_percent']} % of the week's users)" if app["newest_version_users_percent"] is not None else ""
            lines.append(f"  newest version {app['newest_version']}{share}")
        for row in app["top_commands"]:
            failed = f", {row['failure_rate']} % failed" if row["failure_rate"] is not None else ""
            lines.append(f"  {row['command'] or '(no name)'}: {row['runs']} runs{failed}")
        lines.append("")
    lines.append(public_url() + reverse("dashboard:org_overview", kwargs={"org_id": organization.public_id}))
    return "\n".join(lines)


def send_digest(organization: Organization, *, now: datetime) -> int:
    """Store last week's digest notifications for the organization; 0 when already made
    (by this or another scheduler: the Digest row is claimed in the same transaction)."""
    monday, period = last_week(now)
    channels = list(Channel.objects.filter(organization=organization, is_active=True, weekly_digest=True))
    members = list(
        DigestSubscription.objects.filter(organization=organization, user__memberships__organization=organization)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not channels and not members:
        return 0
    apps = [app_figures(app, period) for app in App.objects.filter(organization=organization).order_by("name")]
    text = digest_text(organization, monday, apps)
    payload = {
        "type": "digest",
        "organization": {"id": organization.public_id, "name": organization.name},
        "week": {"start": monday.isoformat(), "end": (monday + timedelta(days=6)).isoformat()},
        "apps": apps,
        "subject": f"Weekly digest of {organization.name}, week of {monday:%d %b %Y}",
        "message": text,
        "text": text,
    }
    try:
        with transaction.atomic():
            Digest.objects.create(organization=organization, week_start=monday, created_at=now)
            made = [Notification(channel=channel, kind="digest", payload=payload, next_attempt_at=now, created_at=now) for channel in channels]
            made += [Notification(email_to=address, kind="digest", payload=payload, next_attempt_at=now, created_at=now) for address in members]
            Notification.objects.bulk_create(made)
    except IntegrityError:
        return 0  # made already for this week
    return len(made)


def digest_job(now: datetime) -> str:
    """The scheduler's hourly `digest` job (alerts.apps)."""
    monday, _ = last_week(now)
    done = set(Digest.objects.filter(week_start=monday).values_list("organization_id", flat=True))
    sent = 0
    for organization in Organization.objects.filter(is_active=True).exclude(pk__in=done).order_by("pk"):
        sent += send_digest(organization, now=now)
    return f"{sent} digest notifications stored for the week of {monday}"
