"""Share links: the app's list of them (admins create and revoke), and the public pages
and badges behind a link's token (docs/sharing.md).

The public views answer anonymous visitors. They show only what dashboard.shares
reads for the link's sections, on a base template of their own with no
navigation; every answer says `noindex` and is counted against the rate limit.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from dashboard import shares, stats
from dashboard.share_forms import RevokeShareForm, ShareLinkForm, SharePasswordForm
from organizations.access import OrgAccess, get_app_access
from organizations.models import App, Role

NOINDEX = "noindex, nofollow, noarchive"
UNLOCKED_SESSION_KEY = "clacks_shares_unlocked"
ISSUED_SESSION_KEY = "clacks_share_issued"


# --- The app's share links (admins) -----------------------------------------------------------


def _links_page(request: HttpRequest, app: App, access: OrgAccess, *, form=None, status: int = 200) -> HttpResponse:
    now = timezone.now()
    links = list(app.share_links.select_related("created_by"))
    # A link made by the POST just before, shown this once (popped: a reload does not show it).
    issued = request.session.pop(ISSUED_SESSION_KEY, None)
    if issued and not any(link.pk == issued["link"] and link.is_usable(now=now) for link in links):
        issued = None  # another app's, or revoked meanwhile
    if issued:
        issued["has_password"] = next(link.has_password for link in links if link.pk == issued["link"])
    context = {
        "organization": access.organization,
        "access": access,
        "app": app,
        "form": form or ShareLinkForm(),
        "active": [link for link in links if link.is_usable(now=now)],
        "inactive": [link for link in links if not link.is_usable(now=now)][:20],
        "issued": issued,
        "badges": shares.BADGES,
    }
    response = render(request, "dashboard/share_links.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page that shows a new link's token
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def share_links(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if request.method != "POST":
        return _links_page(request, app, access)
    form = ShareLinkForm(request.POST)
    if not form.is_valid():
        return _links_page(request, app, access, form=form, status=400)
    now = timezone.now()
    data = form.cleaned_data
    try:
        issued = shares.create_share_link(
            app,
            sections=data["sections"],
            label=data["label"],
            password=data["password"],
            expires_at=shares.expiry_after(data["valid_days"], now=now),
            by=request.user,
            now=now,
        )
    except shares.ShareLinkError as error:
        form.add_error(None, str(error))
        return _links_page(request, app, access, form=form, status=400)
    page = request.build_absolute_uri(reverse("dashboard:shared_page", kwargs={"token": issued.token}))
    badges = [
        (kind, request.build_absolute_uri(reverse("dashboard:shared_badge", kwargs={"token": issued.token, "kind": kind})))
        for kind in shares.BADGES
    ] if issued.link.shows("badges") else []  # fmt: skip
    # Shown by the page the redirect leads to, once, as new credentials are (organizations.views.remember_issued).
    request.session[ISSUED_SESSION_KEY] = {"link": issued.link.pk, "url": page, "badges": badges}
    messages.success(request, "Share link created. Copy it now: it is not shown again.")
    return redirect("dashboard:share_links", org_id=org_id, app_id=app_id)


@login_required
@require_POST
def share_link_revoke(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, _ = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    form = RevokeShareForm(request.POST, app=app)
    if form.is_valid():
        link = form.cleaned_data["link"]
        shares.revoke_share_link(link, by=request.user, now=timezone.now())
        messages.success(request, f"The share link {link.token_prefix}… is revoked; it answers 404 from now on.")
    else:
        messages.error(request, "That share link is already revoked.")
    return redirect("dashboard:share_links", org_id=org_id, app_id=app_id)


# --- The public side ------------------------------------------------------------------------


def _public(response: HttpResponse, *, cache_control: str = "no-store") -> HttpResponse:
    """Headers of every answer behind a share token: not indexed, and the token in a Referer only
    to this server (same-origin: with no-referrer browsers send `Origin: null`, which fails CSRF)."""
    response["X-Robots-Tag"] = NOINDEX
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = cache_control
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    # The same answer for a token never issued, revoked or expired.
    return _public(render(request, "dashboard/shared/not_found.html", status=404))


def _too_many(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(request, "dashboard/shared/too_many.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return _public(response)


def _client(request: HttpRequest) -> str:
    # Behind a proxy every visitor has the proxy's address: the limit is then per link (stricter).
    return request.META.get("REMOTE_ADDR", "")


def _unlocked(request: HttpRequest, link) -> bool:
    return request.session.get(UNLOCKED_SESSION_KEY, {}).get(str(link.pk)) == shares.unlock_key(link)


@require_http_methods(["GET", "HEAD", "POST"])
def shared_page(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    retry_after = shares.over_rate_limit(token, _client(request), now=now)
    if retry_after is not None:
        return _too_many(request, retry_after)
    link = shares.find_share_link(token, now=now)
    if link is None:
        return _not_found(request)
    if link.has_password and not _unlocked(request, link):
        form = SharePasswordForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            if shares.password_matches(link, form.cleaned_data["password"]):
                unlocked = request.session.get(UNLOCKED_SESSION_KEY, {})
                unlocked[str(link.pk)] = shares.unlock_key(link)
                request.session[UNLOCKED_SESSION_KEY] = unlocked
                return _public(redirect(request.path))
            form.add_error("password", "That password is not right. Check it with whoever gave you the link.")
        status = 403 if request.method == "POST" else 200
        return _public(render(request, "dashboard/shared/password.html", {"form": form}, status=status))
    if request.method == "POST":
        return _public(redirect(request.path))
    preset = request.GET.get("range")
    if preset not in shares.SHARED_PRESETS:
        preset = shares.SHARED_DEFAULT_PRESET
    figures = shares.shared_figures(link, preset=preset, now=now)
    period = figures["period"]
    context = {
        **figures,
        "app_name": link.app.name,
        "link": link,
        "preset": preset,
        "presets": [(key, stats.PRESETS[key][0]) for key in shares.SHARED_PRESETS],
        "range_label": stats.PRESETS[preset][0],
        "previous_label": f"the previous {stats.PRESETS[preset][0].removeprefix('Last ')}",
        "badges": list(shares.BADGES) if link.shows("badges") else [],
        "generated_at": now,
        "bucket": period.bucket,
    }
    return _public(render(request, "dashboard/shared/page.html", context))


@require_safe
def shared_badge(request: HttpRequest, token: str, kind: str) -> HttpResponse:
    now = timezone.now()
    retry_after = shares.over_rate_limit(token, _client(request), now=now)
    if retry_after is not None:
        return _too_many(request, retry_after)
    link = shares.find_share_link(token, now=now)
    if link is None or not link.shows("badges") or kind not in shares.BADGES:
        return _not_found(request)
    svg, etag = shares.cached_badge(link, kind, now=now)
    cache_control = f"public, max-age={shares.badge_max_age()}"
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return _public(response, cache_control=cache_control)
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["ETag"] = etag
    # A badge is an image: nothing in it may run or load anything, even opened on its own.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return _public(response, cache_control=cache_control)
