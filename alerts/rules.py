"""Evaluating alert rules: one function per kind gives the figure and whether the
condition holds; evaluate_rules() moves each rule between ok and firing, records the
transition and stores one notification per active channel, in one transaction.

Figures come from the same reads as the pages: the newest event from
dashboard.stats, hourly counts from the rollups (telemetry_hourlycounts, with
the deltas not folded yet), regressions from dashboard.health and quota usage
from telemetry.limits: a few aggregate queries per rule, never one per event.

Several schedulers may run at once: a rule is evaluated at most once per UTC
minute, claimed with one conditional UPDATE of Rule.evaluated_minute, as the
scheduler claims its jobs (telemetry.scheduler).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min, Q, QuerySet, Sum
from django.urls import reverse

from alerts.models import Channel, Notification, Rule, RuleKind, State, Transition
from dashboard import health, stats
from organizations.endpoints import public_url
from telemetry import limits
from telemetry.models import HourlyCounts
from telemetry.periods import HOUR

logger = logging.getLogger(__name__)

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Reading:
    """What a rule saw: whether its condition holds, the figure and the threshold as text."""

    holds: bool
    value: str
    threshold: str
    message: str


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _hourly(app_id: int) -> QuerySet:
    """The app's hourly counts, folded or not (telemetry_hourlycounts, as dashboard.stats reads them)."""
    return HourlyCounts.objects.filter(app_id=app_id)


def read_silence(rule: Rule, *, now: datetime, last_event: datetime | None = None) -> Reading:
    """Firing when the app's newest event is older than `minutes` (an app that never had one never fires)."""
    minutes = rule.minutes or 60
    if last_event is None:
        return Reading(False, "no events yet", f"{minutes} min", "No events yet: nothing can stop.")
    quiet = now - last_event
    quiet_minutes = max(int(quiet.total_seconds() // 60), 0)
    holds = quiet >= timedelta(minutes=minutes)
    message = (
        f"No events for {quiet_minutes} minutes (the last at {last_event:%Y-%m-%d %H:%M} UTC)."
        if holds
        else f"Events are arriving: the last {quiet_minutes} minutes ago."
    )
    return Reading(holds, f"{quiet_minutes} min", f"{minutes} min", message)


def read_volume(rule: Rule, *, now: datetime) -> Reading:
    """The last whole UTC hour's events against the same hour a week earlier (the rollups
    are hourly, so the current, partial hour is not compared)."""
    factor = rule.factor or 2.0
    hour = _hour(now) - HOUR
    rows = (
        _hourly(rule.app_id)
        .filter(dimension="total", hour__in=[hour, hour - WEEK])
        .values("hour")
        .annotate(events=Sum("events"))
        .order_by()
    )
    counts = {row["hour"]: row["events"] for row in rows}
    current, before = counts.get(hour, 0), counts.get(hour - WEEK, 0)
    label = f"{hour:%H}:00–{hour + HOUR:%H}:00 UTC"
    if max(current, before) < rule.min_count:
        return Reading(False, str(current), f"{rule.min_count} events at least", f"Too few events to compare ({current} in {label}, {before} a week earlier).")
    if rule.direction == "below":
        limit = before / factor
        holds = current < limit
        threshold = f"below {limit:g} ({before} a week earlier ÷ {factor:g})"
    else:
        limit = before * factor
        holds = current > limit
        threshold = f"above {limit:g} ({before} a week earlier × {factor:g})"
    message = f"{current} events in {label}, against {before} in the same hour a week earlier."
    return Reading(holds, str(current), threshold, message)


def read_failure_rate(rule: Rule, *, now: datetime) -> Reading:
    """Failed over runs reporting success in the hours the window touches (the rollups are hourly)."""
    minutes = rule.minutes or 60
    threshold = rule.threshold if rule.threshold is not None else 10.0
    start = _hour(now - timedelta(minutes=minutes))
    rows = _hourly(rule.app_id).filter(dimension="command", hour__gte=start, hour__lte=now)
    if rule.command:
        rows = rows.filter(value=rule.command)
    sums = rows.aggregate(succeeded=Sum("succeeded"), failed=Sum("failed"))
    failed, runs = sums["failed"] or 0, (sums["succeeded"] or 0) + (sums["failed"] or 0)
    what = f"`{rule.command}`" if rule.command else "all commands"
    if runs < max(rule.min_count, 1):
        return Reading(False, f"{runs} runs", f"{threshold:g} %", f"Too few runs of {what} to judge ({runs}, {rule.min_count} needed).")
    rate = failed * 100 / runs
    message = f"{rate:.1f} % of {runs} runs of {what} failed since {start:%Y-%m-%d %H:%M} UTC."
    return Reading(rate > threshold, f"{rate:.1f} %", f"{threshold:g} %", message)


def read_new_version(rule: Rule, *, now: datetime) -> Reading:
    """Firing while a service version first seen within `minutes` exists (first seen by hour, from the rollups)."""
    minutes = rule.minutes or 60
    start = _hour(now - timedelta(minutes=minutes))
    first_seen = (
        _hourly(rule.app_id).filter(dimension="version").values("value").annotate(first=Min("hour")).order_by()
    )
    new = sorted(row["value"] for row in first_seen if row["first"] >= start and row["value"])
    if not new:
        return Reading(False, "", f"first seen since {start:%H:%M} UTC", "No new version.")
    return Reading(True, ", ".join(new)[:200], f"first seen since {start:%H:%M} UTC", f"New version first seen: {', '.join(new)}.")


def read_regression(rule: Rule, *, now: datetime) -> Reading:
    """Firing while the newest version has a regression flagged by release health (dashboard.health)
    over the last 7 UTC days: the app overview's range, read the same way (its closed days from the
    daily rollups and the cache), so a rule costs what a view of the overview does."""
    period = stats.with_daily_rollups([rule.app_id], stats.preset_range("7d", now=now))
    newest = health.newest_regressions([rule.app_id], period=period)
    names = sorted(command.command for command in newest.commands)
    if not names:
        return Reading(False, newest.version or "", "any flagged command", f"No regression flagged in {newest.version or 'the newest version'}.")
    text = ", ".join(names)
    return Reading(True, f"{newest.version}: {text}"[:200], "any flagged command", f"Version {newest.version} regressed: {text}.")


def read_quota(rule: Rule, *, now: datetime) -> Reading:
    """Firing while the organization has used `threshold` percent of its monthly quota (telemetry.limits)."""
    threshold = rule.threshold if rule.threshold is not None else 80.0
    usage = limits.monthly_usage(rule.app.organization, now=now)
    if usage.quota is None or usage.used is None:
        return Reading(False, "no quota" if usage.known else "unknown", f"{threshold:g} %", "No quota to measure, or the counter could not be read.")
    percent = usage.used * 100 / usage.quota
    message = f"{usage.used} of {usage.quota} events of the month used ({percent:.0f} %); resets {usage.resets_at:%Y-%m-%d}."
    return Reading(percent >= threshold, f"{percent:.0f} %", f"{threshold:g} %", message)


READERS = {
    RuleKind.VOLUME: read_volume,
    RuleKind.FAILURE_RATE: read_failure_rate,
    RuleKind.NEW_VERSION: read_new_version,
    RuleKind.REGRESSION: read_regression,
    RuleKind.QUOTA: read_quota,
}


def read(rule: Rule, *, now: datetime, last_events: dict[int, datetime | None] | None = None) -> Reading:
    if rule.kind == RuleKind.SILENCE:
        last = last_events[rule.app_id] if last_events is not None else stats.last_event_per_app([rule.app_id]).get(rule.app_id)
        return read_silence(rule, now=now, last_event=last)
    return READERS[rule.kind](rule, now=now)


# --- State --------------------------------------------------------------------------------


def claim(rule: Rule, *, minute: datetime) -> bool:
    """True if this caller evaluates the rule for this minute: one UPDATE, one winner."""
    free = Q(evaluated_minute__isnull=True) | Q(evaluated_minute__lt=minute)
    return Rule.objects.filter(free, pk=rule.pk).update(evaluated_minute=minute) == 1


def rule_link(rule: Rule) -> str:
    path = reverse("alerts:history", kwargs={"org_id": rule.app.organization.public_id, "app_id": rule.app.public_id})
    return public_url() + path


def alert_payload(transition: Transition, rule: Rule) -> dict:
    """The JSON body every webhook gets (README, Alerts: Payload)."""
    app = rule.app
    return {
        "type": "alert",
        "state": transition.to_state,
        "rule": {"id": rule.pk, "name": rule.name, "kind": rule.kind},
        "app": {"id": app.public_id, "name": app.name},
        "organization": {"id": app.organization.public_id, "name": app.organization.name},
        "value": transition.value,
        "threshold": transition.threshold,
        "message": transition.message,
        "at": transition.created_at.isoformat().replace("+00:00", "Z"),
        "link": rule_link(rule),
    }


def store_notifications(organization, *, payload: dict, transition: Transition | None = None, kind: str = "alert",
                        channels=None, now: datetime) -> list[Notification]:
    """One pending notification per active channel (or per channel given): stored, not sent."""
    targets = channels if channels is not None else Channel.objects.filter(organization=organization, is_active=True)
    return Notification.objects.bulk_create(
        [Notification(channel=channel, transition=transition, kind=kind, payload=payload, next_attempt_at=now, created_at=now)
         for channel in targets]
    )


def apply(rule: Rule, reading: Reading, *, now: datetime) -> Transition | None:
    """Move the rule's state by its reading; the transition and its notifications are
    stored in the same transaction as the new state, so none is lost or made twice."""
    cooldown = timedelta(minutes=rule.cooldown_minutes)
    to = None
    if rule.state == State.OK and reading.holds:
        to = State.FIRING
    elif rule.state == State.FIRING and not reading.holds and now - rule.state_since >= cooldown:
        to = State.OK  # a flapping rule stays firing for the cooldown: one fire and one resolve per cooldown at most
    with transaction.atomic():
        if to is None:
            Rule.objects.filter(pk=rule.pk).update(last_value=reading.value[:200])
            return None
        # Conditional on the state read, so two evaluations cannot both move it.
        moved = Rule.objects.filter(pk=rule.pk, state=rule.state).update(state=to, state_since=now, last_value=reading.value[:200])
        if moved != 1:
            return None
        rule.state, rule.state_since = to, now
        transition = Transition.objects.create(
            app=rule.app, rule=rule, rule_name=rule.name, rule_kind=rule.kind,
            to_state=Transition.FIRING if to == State.FIRING else Transition.RESOLVED,
            value=reading.value[:200], threshold=reading.threshold[:200], message=reading.message[:500], created_at=now,
        )  # fmt: skip
        store_notifications(rule.app.organization, payload=alert_payload(transition, rule), transition=transition, now=now)
    logger.info("alert %s on %s %s: %s", rule.name, rule.app.public_id, transition.to_state, reading.message)
    return transition


@dataclass(frozen=True)
class EvaluationResult:
    evaluated: int
    transitions: list[Transition]
    failed: list[str]


def evaluate_rules(*, now: datetime, rules=None) -> EvaluationResult:
    """Evaluate every active rule (of active apps) not yet evaluated this minute."""
    minute = now.replace(second=0, microsecond=0)
    if rules is None:
        rules = Rule.objects.filter(is_active=True, app__is_active=True, app__organization__is_active=True)
    rules = list(rules.select_related("app__organization").order_by("pk"))
    silence_apps = {rule.app_id for rule in rules if rule.kind == RuleKind.SILENCE}
    last_events = stats.last_event_per_app(sorted(silence_apps)) if silence_apps else {}  # one query for them all
    evaluated, transitions, failed = 0, [], []
    for rule in rules:
        if not claim(rule, minute=minute):
            continue
        evaluated += 1
        try:
            transition = apply(rule, read(rule, now=now, last_events=last_events), now=now)
        except Exception:
            # One rule failing (a bad figure, a bug) must not stop the others.
            logger.exception("alert rule %s of %s failed", rule.pk, rule.app.public_id)
            failed.append(str(rule.pk))
            continue
        if transition is not None:
            transitions.append(transition)
    return EvaluationResult(evaluated, transitions, failed)


def evaluate_job(now: datetime) -> str:
    """The scheduler's `alerts` job (alerts.apps)."""
    from telemetry.scheduler import JobFailed

    result = evaluate_rules(now=now)
    summary = f"{result.evaluated} rules evaluated, {len(result.transitions)} transitions"
    if result.failed:
        raise JobFailed(f"{len(result.failed)} rules failed ({', '.join(result.failed[:5])}); {summary}")
    return summary
