"""Two-factor sign-in: TOTP enrolment, recovery codes, verification, disabling (docs/accounts.md).

A user has two-factor on when they have a confirmed TOTP device (django-otp);
their recovery codes are a RecoveryCodeDevice beside it, stored as hashes.
Enrolment makes an unconfirmed device whose secret the page shows (QR code
drawn here, no outside service); a correct code confirms it. Every change is
recorded in the audit log of each organization the user belongs to.
"""

from __future__ import annotations

import secrets
from base64 import b32encode

import qrcode
import qrcode.image.svg
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from organizations.models import Membership, Organization, RecoveryCode, RecoveryCodeDevice, hash_recovery_code
from organizations.services import record_audit

RECOVERY_CODES = 10
# Ten characters of an alphabet without look-alikes (no i, l, o, 0, 1): about 50 bits each.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def audit_user_change(user, *, action: str, actor=None, details: dict | None = None) -> None:
    """Record an account change in the audit log of every organization the user belongs to."""
    organizations = Organization.objects.filter(memberships__user=user)
    for organization in organizations:
        record_audit(
            organization, action=action, target=user.get_username(), actor=actor or user, details=details or {}
        )


def set_required(organization: Organization, *, required: bool, by=None) -> bool:
    """Require (or stop requiring) two-factor sign-in of the members; True when it changed."""
    if organization.require_two_factor == required:
        return False
    organization.require_two_factor = required
    organization.save(update_fields=["require_two_factor"])
    record_audit(
        organization,
        action="organization.require_two_factor" if required else "organization.allow_no_two_factor",
        target=organization.public_id,
        actor=by,
    )
    return True


def confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def is_enabled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def users_with_two_factor(users) -> set[int]:
    """The ids of these users who have two-factor sign-in on (one query)."""
    return set(TOTPDevice.objects.filter(user__in=users, confirmed=True).values_list("user_id", flat=True))


def requires_enrolment(user) -> bool:
    """True when an organization of the user requires two-factor and the user has none."""
    return Membership.objects.filter(user=user, organization__require_two_factor=True).exists()


def pending_device_or_none(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def pending_device(user) -> TOTPDevice:
    """The unconfirmed device of an enrolment in progress, made when there is none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def secret_of(device: TOTPDevice) -> str:
    """The key as authenticator apps take it when typed: base32, no padding, in groups of four."""
    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def qr_svg(device: TOTPDevice) -> bytes:
    """The otpauth:// URL of the device as an SVG QR code (drawn here, no outside service)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=4)
    return image.to_string(encoding="utf-8")


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def new_recovery_codes(user) -> list[str]:
    """Ten new recovery codes replacing any earlier ones; returned once, stored as hashes."""
    codes = [_new_code() for _ in range(RECOVERY_CODES)]
    with transaction.atomic():
        device, _ = RecoveryCodeDevice.objects.get_or_create(
            user=user, defaults={"name": "Recovery codes", "confirmed": True}
        )
        device.codes.all().delete()
        RecoveryCode.objects.bulk_create(RecoveryCode(device=device, code_hash=hash_recovery_code(c)) for c in codes)
    return codes


def recovery_codes_left(user) -> int:
    return RecoveryCode.objects.filter(device__user=user).count()


def confirm_enrolment(user, code: str) -> tuple[TOTPDevice, list[str]] | None:
    """Turn two-factor on when `code` matches the pending device: (device, recovery codes), else None."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(_digits(code)):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = new_recovery_codes(user)
        audit_user_change(user, action="two_factor.enable")
    return device, codes


def verify(user, code: str):
    """The device that accepts `code` (authenticator or a recovery code, used up), or None."""
    code = (code or "").strip()
    if not code:
        return None
    digits = _digits(code)
    if digits.isdigit() and len(digits) == 6:
        device = confirmed_totp(user)
        # TOTPDevice throttles itself: each failure doubles the wait before the next try.
        return device if device is not None and device.verify_token(digits) else None
    device = RecoveryCodeDevice.objects.filter(user=user).first()
    if device is not None and device.verify_token(code):
        audit_user_change(user, action="two_factor.recovery_code_used", details={"left": recovery_codes_left(user)})
        return device
    return None


def regenerate_recovery_codes(user) -> list[str]:
    codes = new_recovery_codes(user)
    audit_user_change(user, action="two_factor.recovery_codes_regenerated")
    return codes


def disable(user, *, actor=None) -> None:
    """Two-factor off: the authenticator and the recovery codes are deleted."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCodeDevice.objects.filter(user=user).delete()
        audit_user_change(user, action="two_factor.disable", actor=actor)


def _digits(code: str) -> str:
    return "".join((code or "").split())
