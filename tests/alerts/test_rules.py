"""Each kind of rule fires and resolves on constructed data; evaluation is once per
rule per minute, notifies each active channel on both transitions, and holds a
flapping rule for its cooldown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from alerts import rules, services
from alerts.models import ChannelKind, Notification, Rule, RuleKind, State, Transition
from telemetry import limits, scheduler
from telemetry.models import MonthlyUsage
from tests.alerts.conftest import store

pytestmark = pytest.mark.django_db


def make_rule(app, kind, **fields) -> Rule:
    return services.create_rule(app, name=fields.pop("name", kind), kind=kind, cooldown_minutes=fields.pop("cooldown_minutes", 0), **fields)


def states(rule: Rule) -> list[str]:
    return list(Transition.objects.filter(rule=rule).order_by("created_at", "pk").values_list("to_state", flat=True))


def evaluate(rule: Rule, now: datetime) -> Rule:
    rules.evaluate_rules(now=now, rules=Rule.objects.filter(pk=rule.pk))
    rule.refresh_from_db()
    return rule


def test_a_silence_rule_fires_when_events_stop_and_resolves_when_they_resume(app, now):
    store(app, at=now - timedelta(minutes=30))
    rule = make_rule(app, RuleKind.SILENCE, minutes=10)

    assert evaluate(rule, now).state == State.FIRING
    assert rule.last_value == "30 min"
    store(app, at=now + timedelta(seconds=10))
    assert evaluate(rule, now + timedelta(minutes=1)).state == State.OK
    assert states(rule) == ["firing", "resolved"]
    assert "No events for 30 minutes" in Transition.objects.get(rule=rule, to_state="firing").message


def test_a_silence_rule_stays_quiet_for_an_app_that_never_sent_events(app, now):
    rule = make_rule(app, RuleKind.SILENCE, minutes=1)
    assert evaluate(rule, now).state == State.OK
    assert states(rule) == []


def test_a_volume_rule_compares_the_last_hour_with_the_same_hour_a_week_earlier(app, now):
    hour = now.replace(minute=0, second=0) - timedelta(hours=1)
    store(app, at=hour + timedelta(minutes=5), n=30)
    store(app, at=hour - timedelta(days=7) + timedelta(minutes=5), n=10)
    rule = make_rule(app, RuleKind.VOLUME, factor=2, direction="above", min_count=10)

    assert evaluate(rule, now).state == State.FIRING
    fired = Transition.objects.get(rule=rule)
    assert (fired.value, fired.threshold) == ("30", "above 20 (10 a week earlier × 2)")

    later = now + timedelta(hours=1)
    store(app, at=hour + timedelta(hours=1, minutes=5), n=10)
    store(app, at=hour + timedelta(hours=1, minutes=5) - timedelta(days=7), n=10)
    assert evaluate(rule, later).state == State.OK
    assert states(rule) == ["firing", "resolved"]


def test_a_volume_rule_below_fires_when_traffic_drops_and_ignores_quiet_hours(app, now):
    hour = now.replace(minute=0, second=0) - timedelta(hours=1)
    store(app, at=hour - timedelta(days=7) + timedelta(minutes=5), n=40)
    store(app, at=hour + timedelta(minutes=5), n=5)
    below = make_rule(app, RuleKind.VOLUME, factor=4, direction="below", min_count=20)
    quiet = make_rule(app, RuleKind.VOLUME, name="quiet", factor=4, direction="below", min_count=100)

    assert evaluate(below, now).state == State.FIRING
    assert evaluate(quiet, now).state == State.OK


def test_a_failure_rate_rule_fires_above_its_threshold_with_enough_runs(app, now):
    store(app, at=now - timedelta(minutes=10), n=10, success=False)
    store(app, at=now - timedelta(minutes=10), n=10, success=True)
    store(app, at=now - timedelta(minutes=10), n=10, success=False, command="deploy")
    rule = make_rule(app, RuleKind.FAILURE_RATE, threshold=20, minutes=60, min_count=10, command="build")
    every = make_rule(app, RuleKind.FAILURE_RATE, name="all", threshold=60, minutes=60, min_count=10)
    too_few = make_rule(app, RuleKind.FAILURE_RATE, name="few", threshold=1, minutes=60, min_count=1000)

    assert evaluate(rule, now).state == State.FIRING
    assert rule.last_value == "50.0 %"
    assert evaluate(every, now).state == State.FIRING  # 20 of 30 runs
    assert evaluate(too_few, now).state == State.OK

    later = now + timedelta(hours=2)
    store(app, at=later - timedelta(minutes=5), n=20, success=True)
    assert evaluate(rule, later).state == State.OK
    assert states(rule) == ["firing", "resolved"]


def test_a_new_version_rule_fires_when_a_version_is_first_seen_and_resolves_after_its_window(app, now):
    store(app, at=now - timedelta(days=3), version="1.0.0")
    rule = make_rule(app, RuleKind.NEW_VERSION, minutes=60)
    assert evaluate(rule, now).state == State.OK

    store(app, at=now - timedelta(minutes=5), version="2.0.0")
    assert evaluate(rule, now + timedelta(minutes=1)).state == State.FIRING
    assert rule.last_value == "2.0.0"
    assert evaluate(rule, now + timedelta(hours=3)).state == State.OK
    assert states(rule) == ["firing", "resolved"]


def test_a_regression_rule_fires_while_release_health_flags_the_newest_version(app, now):
    store(app, at=now - timedelta(days=2), n=200, success=True, version="1.0.0")
    store(app, at=now - timedelta(days=2), n=2, success=False, version="1.0.0")
    store(app, at=now - timedelta(hours=2), n=100, success=True, version="1.1.0")
    store(app, at=now - timedelta(hours=2), n=100, success=False, version="1.1.0")
    rule = make_rule(app, RuleKind.REGRESSION)

    assert evaluate(rule, now).state == State.FIRING
    assert rule.last_value == "1.1.0: build"

    store(app, at=now - timedelta(minutes=30), n=200, success=True, version="1.2.0")
    assert evaluate(rule, now + timedelta(minutes=1)).state == State.OK
    assert states(rule) == ["firing", "resolved"]


def test_a_quota_rule_fires_at_its_share_of_the_monthly_quota_and_resolves_with_the_new_month(app, org):
    org.tier = "free"  # 10,000 events a month
    org.save()
    now = datetime(2026, 11, 20, 12, 0, tzinfo=dt_timezone.utc)
    MonthlyUsage.objects.create(organization=org, month=limits.month_of(now), events=8_100)
    eighty = make_rule(app, RuleKind.QUOTA, threshold=80)
    full = make_rule(app, RuleKind.QUOTA, name="full", threshold=100)

    assert evaluate(eighty, now).state == State.FIRING
    assert eighty.last_value == "81 %"
    assert evaluate(full, now).state == State.OK
    assert evaluate(eighty, datetime(2026, 12, 1, 0, 5, tzinfo=dt_timezone.utc)).state == State.OK
    assert states(eighty) == ["firing", "resolved"]


def test_each_transition_stores_one_notification_per_active_channel(app, org, now):
    hooks, _ = services.create_channel(org, name="hooks", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/a")
    slack, _ = services.create_channel(org, name="slack", kind=ChannelKind.SLACK, url="https://hooks.example.com/b")
    off, _ = services.create_channel(org, name="off", kind=ChannelKind.WEBHOOK, url="https://hooks.example.com/c")
    off.is_active = False
    off.save()
    store(app, at=now - timedelta(minutes=30))
    rule = make_rule(app, RuleKind.SILENCE, minutes=10)

    evaluate(rule, now)
    store(app, at=now)
    evaluate(rule, now + timedelta(minutes=1))

    sent = Notification.objects.order_by("pk")
    assert [(n.channel.name, n.payload["state"]) for n in sent] == [
        ("hooks", "firing"), ("slack", "firing"), ("hooks", "resolved"), ("slack", "resolved"),
    ]  # fmt: skip
    payload = sent[0].payload
    assert payload["rule"] == {"id": rule.pk, "name": "silence", "kind": "silence"}
    assert payload["app"] == {"id": app.public_id, "name": app.name}
    assert (payload["value"], payload["threshold"]) == ("30 min", "10 min")
    assert payload["link"].endswith(f"/orgs/{org.public_id}/apps/{app.public_id}/alerts/history/")
    assert len({n.idempotency_key for n in sent}) == 4


def test_a_rule_is_evaluated_once_per_minute_however_often_evaluation_runs(app, now):
    store(app, at=now - timedelta(minutes=30))
    make_rule(app, RuleKind.SILENCE, minutes=10)

    first = rules.evaluate_rules(now=now)
    second = rules.evaluate_rules(now=now + timedelta(seconds=20))  # another scheduler, same minute
    third = rules.evaluate_rules(now=now + timedelta(minutes=1))

    assert (first.evaluated, second.evaluated, third.evaluated) == (1, 0, 1)
    assert Transition.objects.count() == 1


def test_a_flapping_rule_stays_firing_for_its_cooldown(app, now):
    store(app, at=now - timedelta(minutes=30))
    rule = make_rule(app, RuleKind.SILENCE, minutes=10, cooldown_minutes=15)
    evaluate(rule, now)
    store(app, at=now)

    assert evaluate(rule, now + timedelta(minutes=5)).state == State.FIRING  # events back, but within the cooldown
    store(app, at=now + timedelta(minutes=14))
    assert evaluate(rule, now + timedelta(minutes=15)).state == State.OK
    assert states(rule) == ["firing", "resolved"]


def test_inactive_rules_and_disabled_apps_are_not_evaluated(app, now):
    store(app, at=now - timedelta(minutes=30))
    make_rule(app, RuleKind.SILENCE, minutes=10, is_active=False)
    assert rules.evaluate_rules(now=now).evaluated == 0


def test_the_scheduler_runs_evaluation_and_delivery_as_jobs():
    found = {job.name: job.period for job in scheduler.jobs()}
    assert found["alerts"] == timedelta(minutes=1)
    assert found["deliveries"] == timedelta(seconds=5)
