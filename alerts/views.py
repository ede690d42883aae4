"""Alert pages: an app's rules and history, the organization's channels with their
deliveries. Viewers read rules and history; admins and owners change them and
manage channels (their URLs and deliveries name outside systems)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from alerts import services
from alerts.forms import ChannelForm, DigestForm, RuleForm
from alerts.models import Channel, DeliveryAttempt, DigestSubscription, Notification, Rule, Transition
from organizations.access import get_app_access, get_org_access
from organizations.models import Role

HISTORY_ROWS = 200
NEW_SECRET_SESSION_KEY = "alerts_new_channel_secret"


def _rule(app, rule_id: int) -> Rule:
    rule = Rule.objects.filter(app=app, pk=rule_id).first()
    if rule is None:
        raise Http404("No such alert rule in this application.")
    return rule


def _channel(organization, channel_id: int) -> Channel:
    channel = Channel.objects.filter(organization=organization, pk=channel_id).first()
    if channel is None:
        raise Http404("No such channel in this organization.")
    return channel


@login_required
@require_safe
def rules(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    context = {
        "organization": access.organization, "access": access, "app": app,
        "rules": Rule.objects.filter(app=app),
        "channels": Channel.objects.filter(organization=access.organization),
        "recent": Transition.objects.filter(app=app)[:5],
    }  # fmt: skip
    return render(request, "alerts/rules.html", context)


@login_required
@require_safe
def history(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    transitions = Transition.objects.filter(app=app)[:HISTORY_ROWS]
    context = {"organization": access.organization, "access": access, "app": app, "transitions": transitions, "limit": HISTORY_ROWS}
    return render(request, "alerts/history.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def rule_new(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = RuleForm(request.POST if request.method == "POST" else None, app=app)
    if request.method == "POST" and form.is_valid():
        rule = services.create_rule(app, by=request.user, **form.rule_fields())
        messages.success(request, f"Alert rule “{rule.name}” created; it is evaluated every minute.")
        return redirect("alerts:rules", org_id=org_id, app_id=app_id)
    context = {"organization": access.organization, "access": access, "app": app, "form": form, "title": "New alert rule"}
    return render(request, "alerts/rule_form.html", context, status=400 if form.is_bound else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def rule_edit(request: HttpRequest, org_id: str, app_id: str, rule_id: int) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    rule = _rule(app, rule_id)
    form = RuleForm(request.POST if request.method == "POST" else None, app=app, rule=rule)
    if request.method == "POST" and form.is_valid():
        services.update_rule(rule, by=request.user, **form.rule_fields())
        messages.success(request, f"Alert rule “{rule.name}” saved.")
        return redirect("alerts:rules", org_id=org_id, app_id=app_id)
    context = {"organization": access.organization, "access": access, "app": app, "form": form, "rule": rule, "title": "Edit alert rule"}
    return render(request, "alerts/rule_form.html", context, status=400 if form.is_bound else 200)


@login_required
@require_POST
def rule_delete(request: HttpRequest, org_id: str, app_id: str, rule_id: int) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    rule = _rule(app, rule_id)
    services.delete_rule(rule, by=request.user)
    messages.success(request, f"Alert rule “{rule.name}” deleted; its history is kept.")
    return redirect("alerts:rules", org_id=org_id, app_id=app_id)


@login_required
def channels(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    context = {"organization": access.organization, "access": access, "channels": Channel.objects.filter(organization=access.organization)}
    return render(request, "alerts/channels.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def channel_new(request: HttpRequest, org_id: str) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    form = ChannelForm(request.POST if request.method == "POST" else None, organization=access.organization)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        channel, secret = services.create_channel(
            access.organization, name=data["name"], kind=data["kind"], url=data.get("url") or "",
            recipients=data.get("recipients") or "", weekly_digest=data.get("weekly_digest", False), by=request.user,
        )  # fmt: skip
        if secret:
            request.session[NEW_SECRET_SESSION_KEY] = {"channel": channel.pk, "secret": secret}
        messages.success(request, f"Channel “{channel.name}” created.")
        return redirect("alerts:channel_detail", org_id=org_id, channel_id=channel.pk)
    context = {"organization": access.organization, "access": access, "form": form}
    return render(request, "alerts/channel_new.html", context, status=400 if form.is_bound else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def channel_detail(request: HttpRequest, org_id: str, channel_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    channel = _channel(access.organization, channel_id)
    form = ChannelForm(request.POST if request.method == "POST" else None, organization=access.organization, channel=channel)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.update_channel(channel, name=data["name"], url=data.get("url") or channel.url,
                                recipients=data.get("recipients") or channel.recipients,
                                weekly_digest=data.get("weekly_digest", False), by=request.user)
        messages.success(request, f"Channel “{channel.name}” saved.")
        return redirect("alerts:channel_detail", org_id=org_id, channel_id=channel.pk)
    new_secret = None
    shown = request.session.get(NEW_SECRET_SESSION_KEY)
    if shown and shown.get("channel") == channel.pk:
        new_secret = shown["secret"]
        del request.session[NEW_SECRET_SESSION_KEY]  # shown once
    context = {
        "organization": access.organization, "access": access, "channel": channel, "form": form, "new_secret": new_secret,
        "notifications": Notification.objects.filter(channel=channel)[:20],
        "attempts": DeliveryAttempt.objects.filter(notification__channel=channel).select_related("notification")[:50],
    }  # fmt: skip
    return render(request, "alerts/channel_detail.html", context, status=400 if form.is_bound else 200)


@login_required
@require_POST
def channel_test(request: HttpRequest, org_id: str, channel_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    channel = _channel(access.organization, channel_id)
    services.send_test(channel, by=request.user)
    if channel.is_active:
        messages.success(request, "Test notification stored; the scheduler sends it within seconds. Reload to see the attempt.")
    else:
        messages.warning(request, "Test notification stored, but the channel is disabled: enable it to have it sent.")
    return redirect("alerts:channel_detail", org_id=org_id, channel_id=channel.pk)


@login_required
@require_POST
def channel_enable(request: HttpRequest, org_id: str, channel_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    channel = _channel(access.organization, channel_id)
    services.enable_channel(channel, by=request.user)
    messages.success(request, f"Channel “{channel.name}” is enabled again; its pending notifications are retried.")
    return redirect("alerts:channel_detail", org_id=org_id, channel_id=channel.pk)


@login_required
@require_POST
def channel_delete(request: HttpRequest, org_id: str, channel_id: int) -> HttpResponse:
    access = get_org_access(request.user, org_id, min_role=Role.ADMIN)
    channel = _channel(access.organization, channel_id)
    services.delete_channel(channel, by=request.user)
    messages.success(request, f"Channel “{channel.name}” deleted with its pending notifications.")
    return redirect("alerts:channels", org_id=org_id)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def digest(request: HttpRequest, org_id: str) -> HttpResponse:
    """Every member chooses for themselves whether the weekly digest comes to their email."""
    access = get_org_access(request.user, org_id)
    subscribed = DigestSubscription.objects.filter(organization=access.organization, user=request.user).exists()
    form = DigestForm(request.POST if request.method == "POST" else None, initial={"subscribed": subscribed})
    if request.method == "POST" and form.is_valid():
        wanted = form.cleaned_data["subscribed"]
        services.set_digest_subscription(access.organization, request.user, subscribed=wanted)
        if wanted and not request.user.email:
            messages.warning(request, "Subscribed, but your account has no email address: nothing can be sent until it has one.")
        else:
            messages.success(request, "You get the weekly digest by email." if wanted else "You no longer get the weekly digest.")
        return redirect("alerts:digest", org_id=org_id)
    context = {"organization": access.organization, "access": access, "form": form, "subscribed": subscribed}
    return render(request, "alerts/digest.html", context)
