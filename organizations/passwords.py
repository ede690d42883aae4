"""Getting back into an account without a shell: reset links made by an owner, and after a reset.

A reset link is Django's password-reset token (the same one the "forgot your
password" email carries): it works once, because it is derived from the
password hash and the last sign-in, and for PASSWORD_RESET_TIMEOUT seconds.
An owner may make one for a member only when every organization of that member
is one the owner owns, so no owner can take over an account that another
organization relies on; a superuser may make one for anyone (docs/accounts.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from organizations.models import Membership, Role
from organizations.services import record_audit
from organizations.sessions import end_other_sessions
from organizations.twofactor import audit_user_change


class ResetNotAllowed(Exception):
    """The actor may not make a reset link for this member; the message says why."""


def reset_path(user) -> str:
    """The path of a one-time reset link for the user (the caller adds the host)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("organizations:password_reset_confirm", kwargs={"uidb64": uid, "token": token})


def check_may_reset(actor, membership: Membership) -> None:
    """Raise ResetNotAllowed unless `actor` may make a reset link for the membership's user."""
    member = membership.user
    if actor.is_superuser:
        return
    if member.pk == actor.pk:
        raise ResetNotAllowed("Change your own password on the Password page.")
    if member.is_superuser or member.is_staff:
        raise ResetNotAllowed(f"{member.get_username()} is a server administrator: only a superuser can reset their password.")
    owned = set(Membership.objects.filter(user=actor, role=Role.OWNER).values_list("organization_id", flat=True))
    theirs = set(Membership.objects.filter(user=member).values_list("organization_id", flat=True))
    if not theirs <= owned:
        raise ResetNotAllowed(
            f"{member.get_username()} also belongs to an organization you do not own: "
            "ask a superuser to make their reset link."
        )


def make_reset_link(membership: Membership, *, by) -> tuple[str, datetime]:
    """A reset link path for the member and when it expires; audited in the organization."""
    check_may_reset(by, membership)
    path = reset_path(membership.user)
    expires_at = timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    record_audit(
        membership.organization,
        action="member.password_reset_link",
        target=membership.user.get_username(),
        actor=by,
        details={"expires_at": expires_at.isoformat(timespec="seconds")},
    )
    return path, expires_at


def make_reset_link_for_user(user, *, by) -> tuple[str, datetime]:
    """A superuser's reset link for any user (the Django admin's user list); audited in
    each organization of the user."""
    if not by.is_superuser:
        raise ResetNotAllowed("Only a superuser can make a reset link here.")
    path = reset_path(user)
    expires_at = timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    audit_user_change(
        user, action="member.password_reset_link", actor=by, details={"expires_at": expires_at.isoformat(timespec="seconds")}
    )
    return path, expires_at


def after_password_set(user) -> None:
    """A new password from a reset link: every session of the user ends, and it is audited."""
    end_other_sessions(user, keep=None)
    audit_user_change(user, action="password.reset", actor=user)
