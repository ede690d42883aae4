"""Account security pages: two-factor sign-in, the session list, password reset (docs/accounts.md).

Thin views: the work is in organizations.twofactor, .sessions and .passwords.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from organizations import forms, sessions, twofactor
from organizations.models import UserSession
from organizations.passwords import after_password_set

# Where new recovery codes wait for the one page view that shows them.
NEW_CODES_SESSION_KEY = "clacks_new_recovery_codes"


def _safe_next(request: HttpRequest, fallback: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


# --- Two-factor sign-in -------------------------------------------------------------------


@never_cache
@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Two-factor status, enrolment (QR code, secret, confirm) and, when on, codes and disabling."""
    user = request.user
    enabled = twofactor.is_enabled(user)
    pending = None if enabled else twofactor.pending_device_or_none(user)
    context = {
        "enabled": enabled,
        "pending": pending,
        "secret": twofactor.secret_of(pending) if pending else "",
        "codes_left": twofactor.recovery_codes_left(user) if enabled else 0,
        "new_codes": request.session.pop(NEW_CODES_SESSION_KEY, None),
        "confirm_form": forms.CodeForm(),
        # Two forms on one page: prefixes keep their fields' ids apart.
        "regen_form": forms.CodeForm(recovery=True, prefix="regen"),
        "disable_form": forms.CodeForm(recovery=True, prefix="disable"),
    }
    return render(request, "accounts/two_factor.html", context)


@login_required
@require_POST
def two_factor_start(request: HttpRequest) -> HttpResponse:
    if twofactor.is_enabled(request.user):
        return redirect("organizations:two_factor")
    twofactor.pending_device(request.user)
    return redirect("organizations:two_factor")


@never_cache
@login_required
def two_factor_qr(request: HttpRequest) -> HttpResponse:
    """The QR code of the enrolment in progress, as SVG (an <img> on the page)."""
    device = twofactor.pending_device_or_none(request.user)
    if device is None:
        raise Http404("No two-factor set-up in progress.")
    return HttpResponse(twofactor.qr_svg(device), content_type="image/svg+xml")


@login_required
@require_POST
def two_factor_confirm(request: HttpRequest) -> HttpResponse:
    form = forms.CodeForm(request.POST)
    done = twofactor.confirm_enrolment(request.user, form.cleaned_data["code"]) if form.is_valid() else None
    if done is None:
        messages.error(request, "That code is not right. Check the time on your phone and type the code it shows now.")
        return redirect("organizations:two_factor")
    device, codes = done
    otp_login(request, device)
    ended = sessions.end_other_sessions(request.user, keep=request.session.session_key)
    request.session[NEW_CODES_SESSION_KEY] = codes
    note = f" Your {ended} other session{'s were' if ended != 1 else ' was'} signed out." if ended else ""
    messages.success(request, f"Two-factor sign-in is on.{note} Keep your recovery codes somewhere safe.")
    return redirect("organizations:two_factor")


@login_required
@require_POST
def two_factor_recovery_codes(request: HttpRequest) -> HttpResponse:
    form = forms.CodeForm(request.POST, recovery=True, prefix="regen")
    if not (form.is_valid() and twofactor.verify(request.user, form.cleaned_data["code"])):
        messages.error(request, "That code is not right: no new recovery codes were made.")
        return redirect("organizations:two_factor")
    request.session[NEW_CODES_SESSION_KEY] = twofactor.regenerate_recovery_codes(request.user)
    messages.success(request, "New recovery codes are made; the old ones no longer work.")
    return redirect("organizations:two_factor")


@login_required
@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    form = forms.CodeForm(request.POST, recovery=True, prefix="disable")
    if not (form.is_valid() and twofactor.verify(request.user, form.cleaned_data["code"])):
        messages.error(request, "That code is not right: two-factor sign-in is still on.")
        return redirect("organizations:two_factor")
    twofactor.disable(request.user)
    messages.success(request, "Two-factor sign-in is off.")
    return redirect("organizations:two_factor")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator, or a recovery code."""
    if request.user.is_verified() or not twofactor.is_enabled(request.user):
        return redirect(_safe_next(request))
    form = forms.CodeForm(request.POST if request.method == "POST" else None, recovery=True)
    if request.method == "POST" and form.is_valid():
        device = twofactor.verify(request.user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            if device.persistent_id.startswith("organizations."):
                left = twofactor.recovery_codes_left(request.user)
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. Make new ones on the Two-factor page if you are running out.",
                )
            return redirect(_safe_next(request))
        form.add_error("code", "That code is not right. Type the code your app shows now, or a recovery code.")
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": _safe_next(request, "")})


# --- Sessions ---------------------------------------------------------------------------------


@never_cache
@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    sessions.touch(request, force=True)
    rows = sessions.active_sessions(request.user, current_key=request.session.session_key)
    return render(request, "accounts/sessions.html", {"rows": rows})


@login_required
@require_POST
def session_end_others(request: HttpRequest) -> HttpResponse:
    ended = sessions.end_other_sessions(request.user, keep=request.session.session_key)
    twofactor.audit_user_change(request.user, action="sessions.end_others", details={"ended": ended})
    messages.success(request, f"Signed out of {ended} other session{'s' if ended != 1 else ''}.")
    return redirect("organizations:sessions")


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    entry = UserSession.objects.filter(user=request.user, pk=session_id).first()
    if entry is None or entry.session_key == request.session.session_key:
        raise Http404("No such session.")
    sessions.end_session(entry)
    twofactor.audit_user_change(request.user, action="sessions.end", details={"ended": 1})
    messages.success(request, "That session is signed out.")
    return redirect("organizations:sessions")


# --- Passwords --------------------------------------------------------------------------------


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """A reset link, made by an owner or mailed: set a new password (every session ends)."""

    template_name = "accounts/password_reset_confirm.html"
    form_class = forms.SetPasswordForm
    success_url = reverse_lazy("organizations:password_reset_complete")

    def get_context_data(self, **kwargs):
        # A used or expired link offers a mailed one when the server can send mail.
        return super().get_context_data(**kwargs, password_reset_by_email=bool(settings.EMAIL_HOST))

    def form_valid(self, form):
        response = super().form_valid(form)
        after_password_set(form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


class EmailConfigured:
    """The "forgot your password" email pages exist only when the server can send mail."""

    def dispatch(self, request, *args, **kwargs):
        if not settings.EMAIL_HOST:
            raise Http404("This server sends no email: ask an owner of your organization for a reset link.")
        return super().dispatch(request, *args, **kwargs)


class PasswordResetView(EmailConfigured, auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    form_class = forms.PasswordResetForm
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("organizations:password_reset_sent")

    def form_valid(self, form):
        # The link in the mail starts with CLACKS_PUBLIC_URL, never with the request's Host header.
        opts = {
            "use_https": self.request.is_secure(),
            "token_generator": self.token_generator,
            "from_email": self.from_email,
            "email_template_name": self.email_template_name,
            "subject_template_name": self.subject_template_name,
            "request": self.request,
            "html_email_template_name": None,
            "extra_email_context": {"public_url": settings.CLACKS_PUBLIC_URL},
        }
        form.save(**opts)
        return redirect(self.get_success_url())


class PasswordResetSentView(EmailConfigured, auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_sent.html"
