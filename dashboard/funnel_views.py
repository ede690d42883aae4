"""Funnel pages: the app's saved funnels, one funnel's figures, and (admins) creating,
editing and deleting them. Figures come from dashboard.funnels; the range and
filters from the shared filter bar (dashboard.filter_bar)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from dashboard import filter_bar, funnels
from dashboard.funnel_forms import TAKEN, FunnelForm
from dashboard.models import MAX_STEPS, Funnel
from organizations.access import OrgAccess, get_app_access
from organizations.models import App, Role

# Suggestions in the form: event types and names among the app's latest events.
SUGGESTION_SAMPLE = 2000


def _funnel(app: App, funnel_id: int) -> Funnel:
    funnel = Funnel.objects.filter(app=app, pk=funnel_id).first()
    if funnel is None:
        raise Http404("No such funnel in this application.")
    return funnel


def _kept_query(request: HttpRequest) -> str:
    """The range and filters of the page the person came from, for links between funnel pages."""
    kept = [(name, value) for name, value in request.GET.items() if name in ("range", "start", "end", "version", "os", "arch", "ci")]
    return urlencode(kept)


def _base(access: OrgAccess, app: App, **context) -> dict:
    return {"organization": access.organization, "access": access, "app": app, **context}


@login_required
@require_safe
def funnel_list(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    rows = [
        {"funnel": funnel, "steps": funnels.steps_of(funnel.steps), "window": funnels.window_label(funnel.window_seconds)}
        for funnel in Funnel.objects.filter(app=app)
    ]
    return render(request, "dashboard/funnel_list.html", _base(access, app, rows=rows, query=_kept_query(request)))


@login_required
@require_safe
def funnel_detail(request: HttpRequest, org_id: str, app_id: str, funnel_id: int) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id)
    funnel = _funnel(app, funnel_id)
    state = filter_bar.page_state(request, [app.pk])
    steps = funnels.steps_of(funnel.steps)
    result = funnels.compute(
        app.pk,
        steps,
        window=funnel.window,
        start=state.period.start,
        end=state.period.end,
        filters=state.filters,
    )
    context = _base(
        access,
        app,
        funnel=funnel,
        result=result,
        rows=_step_rows(result, funnels.strictness(steps)),
        overall=_percent(result.completed, result.entered),
        window=funnels.window_label(funnel.window_seconds),
        span=_span(state.period.start, state.period.end),
        window_end=_moment(state.period.end + funnel.window),
        query=state.query,
        **filter_bar.context([app.pk], state),
    )
    return render(request, "dashboard/funnel_detail.html", context)


def _percent(part: int, whole: int) -> float | None:
    return part * 100 / whole if whole else None


def _moment(moment) -> str:
    return f"{moment.day} {moment:%b %Y %H:%M}"


def _span(start, end) -> str:
    return f"{_moment(start)} and {_moment(end)} UTC"


def _step_rows(result: funnels.FunnelResult, strict: list[bool]) -> list[dict]:
    """What the steps table shows, per step."""
    rows = []
    for k, row in enumerate(result.steps):
        rows.append(
            {
                "number": k + 1,
                "step": row.step,
                "users": row.users,
                "bar": _percent(row.users, result.entered) or 0,
                "from_first": None if row.from_first is None else row.from_first * 100,
                "from_previous": None if row.from_previous is None else row.from_previous * 100,
                "median": funnels.span_text(row.median_seconds),
                "median_seconds": row.median_seconds,
                "strict": strict[k],
            }
        )
    return rows


def _form_page(request, access, app, form, *, funnel=None, status=200) -> HttpResponse:
    types, names = funnels.suggestions(app.pk, sample=SUGGESTION_SAMPLE)
    context = _base(
        access, app, form=form, funnel=funnel, max_steps=MAX_STEPS, type_suggestions=types, name_suggestions=names,
        query=_kept_query(request),
    )  # fmt: skip
    return render(request, "dashboard/funnel_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def funnel_new(request: HttpRequest, org_id: str, app_id: str) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    if request.method == "GET":
        return _form_page(request, access, app, FunnelForm(app=app))
    form = FunnelForm(request.POST, app=app)
    if not form.is_valid():
        return _form_page(request, access, app, form, status=400)
    data = form.cleaned_data
    try:
        funnel = funnels.create_funnel(app, name=data["name"], steps=data["steps"], window_seconds=data["window"], by=request.user)
    except IntegrityError:  # the same name saved by someone else since the form was checked
        form.add_error("name", TAKEN)
        return _form_page(request, access, app, form, status=400)
    messages.success(request, f"Funnel “{funnel.name}” saved.")
    return redirect("dashboard:funnel_detail", org_id=org_id, app_id=app_id, funnel_id=funnel.pk)


@login_required
@require_http_methods(["GET", "POST"])
def funnel_edit(request: HttpRequest, org_id: str, app_id: str, funnel_id: int) -> HttpResponse:
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    funnel = _funnel(app, funnel_id)
    if request.method == "GET":
        return _form_page(request, access, app, FunnelForm(app=app, funnel=funnel), funnel=funnel)
    form = FunnelForm(request.POST, app=app, funnel=funnel)
    if not form.is_valid():
        return _form_page(request, access, app, form, funnel=funnel, status=400)
    data = form.cleaned_data
    try:
        changed = funnels.update_funnel(
            funnel, name=data["name"], steps=data["steps"], window_seconds=data["window"], by=request.user
        )
    except IntegrityError:
        form.add_error("name", TAKEN)
        return _form_page(request, access, app, form, funnel=funnel, status=400)
    if changed:
        messages.success(request, f"Funnel “{funnel.name}” saved.")
    else:
        messages.info(request, "Nothing changed.")
    return redirect("dashboard:funnel_detail", org_id=org_id, app_id=app_id, funnel_id=funnel.pk)


@login_required
@require_http_methods(["GET", "POST"])
def funnel_delete(request: HttpRequest, org_id: str, app_id: str, funnel_id: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    app, access = get_app_access(request.user, org_id, app_id, min_role=Role.ADMIN)
    funnel = _funnel(app, funnel_id)
    if request.method == "GET":
        context = _base(access, app, funnel=funnel, steps=funnels.steps_of(funnel.steps),
                        window=funnels.window_label(funnel.window_seconds))  # fmt: skip
        return render(request, "dashboard/funnel_delete.html", context)
    name = funnel.name
    funnels.delete_funnel(funnel, by=request.user)
    messages.success(request, f"Funnel “{name}” deleted. Its events are kept.")
    return redirect("dashboard:funnels", org_id=org_id, app_id=app_id)
