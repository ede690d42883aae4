"""Organizations, their members, their applications and each application's credentials."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin

from organizations.crypto import decrypt_secret


class Tier(models.TextChoices):
    FREE = "free", "Free"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"
    SELF_HOSTED = "self_hosted", "Self-hosted"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    VIEWER = "viewer", "Viewer"


# Retention presets offered in forms; None means "keep forever".
RETENTION_PRESETS = (7, 30, 90, 365)
DEFAULT_RETENTION_DAYS = 90


class Organization(models.Model):
    public_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.SELF_HOSTED)
    is_active = models.BooleanField(default=True, help_text="Disabled organizations' apps get 403 on ingest.")
    # Days events are kept; None keeps them forever. Apps may override it.
    retention_days = models.PositiveIntegerField(null=True, blank=True, default=DEFAULT_RETENTION_DAYS)
    # Whether retention writes events to the archive before deleting them (docs/archive.md).
    archive_before_delete = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # Members without two-factor sign-in are led to enrol at their next sign-in
    # (organizations.middleware.two_factor).
    require_two_factor = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class Membership(models.Model):
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_once_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization.public_id} as {self.role}"


class Invitation(models.Model):
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="invitations")
    token = models.CharField(max_length=64, unique=True)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"invitation to {self.organization.public_id} as {self.role}"

    def is_usable(self, *, now=None) -> bool:
        return self.accepted_at is None and (now or timezone.now()) < self.expires_at


class AppQuerySet(models.QuerySet["App"]):
    def for_ingest(self, org_public_id: str, app_public_id: str) -> App | None:
        """The app named by an ingest URL, with its organization, or None. Exact, case-sensitive."""
        return (
            self.select_related("organization")
            .filter(public_id=app_public_id, organization__public_id=org_public_id)
            .first()
        )


class App(models.Model):
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="apps")
    public_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True, help_text="Disabled apps get 403 on ingest.")
    # When False the organization's retention applies; when True retention_days
    # below does (None = keep forever).
    retention_override = models.BooleanField(default=False)
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    retention_last_run_at = models.DateTimeField(null=True, blank=True)
    # Archive before deleting (docs/archive.md): None follows the organization's choice.
    archive_before_delete = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def effective_retention_days(self) -> int | None:
        return self.retention_days if self.retention_override else self.organization.retention_days

    @property
    def effective_archive(self) -> bool:
        """Whether retention archives this app's events before deleting them."""
        if self.archive_before_delete is None:
            return self.organization.archive_before_delete
        return self.archive_before_delete

    @property
    def ingest_path(self) -> str:
        return f"/v1/ingest/{self.organization.public_id}/{self.public_id}"


def hash_token(token: str) -> str:
    """API tokens are stored as their SHA-256: high-entropy random strings need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_app_public_id() -> str:
    return f"app_{secrets.token_hex(8)}"


class CredentialQuerySet(models.QuerySet["Credential"]):
    def active(self) -> CredentialQuerySet:
        return self.filter(revoked_at__isnull=True)


class Credential(models.Model):
    """One HMAC secret and API token pair. An app has at most two active at once,
    so a rotation can overlap: the old set stays valid until it is revoked."""

    MAX_ACTIVE_PER_APP = 2

    app = models.ForeignKey(App, models.CASCADE, related_name="credentials")
    # Fernet-encrypted with CLACKS_SECRETS_KEY (organizations.crypto).
    secret_encrypted = models.TextField()
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the token, to tell credential sets apart on the page.
    token_prefix = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = CredentialQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"credential {self.token_prefix}… for {self.app.public_id} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def reveal_secret(self) -> str:
        return decrypt_secret(self.secret_encrypted)


class AuditEntry(models.Model):
    organization = models.ForeignKey(Organization, models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=64)
    # What the action was about, as text (apps and users may be deleted later).
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The organization's audit page lists newest first.
            models.Index(fields=["organization", "-created_at"], name="audit_org_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target} by {self.actor}"


# --- Single sign-on (organizations.sso) ---------------------------------------------


class SsoIdentity(models.Model):
    """The account an OpenID provider's subject signs in to. Accounts are found by
    (issuer, subject), never by email, so an address cannot take over an account."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="sso_identities")
    issuer = models.CharField(max_length=255)
    # OpenID Connect Core 1.0, 2: at most 255 ASCII characters.
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # Every sign-in looks the account up by these; one account per subject.
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_once"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer} for {self.user}"


class SsoDomain(models.Model):
    """People who sign in through single sign-on with a verified address at `domain` join
    the organization with `role`, once (organizations.sso.join_by_email_domain)."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="sso_domains")
    domain = models.CharField(max_length=253)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "domain"], name="sso_domain_once_per_org"),
        ]
        indexes = [
            # Each single sign-on looks up the rules for the address's domain.
            models.Index(fields=["domain"], name="sso_domain_lookup"),
        ]

    def __str__(self) -> str:
        return f"{self.domain} joins {self.organization.public_id} as {self.role}"


class SsoDomainJoin(models.Model):
    """An organization's domain rule was applied to this user: it is never applied again,
    so a member an owner removes is not added back at their next sign-in."""

    organization = models.ForeignKey(Organization, models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="sso_domain_join_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user} considered for {self.organization.public_id}"


# --- Accounts: recovery codes and the session list ---------------------------------------


def hash_recovery_code(code: str) -> str:
    """Recovery codes are random (50 bits) and single-use, so a SHA-256 like API tokens'
    suffices; spaces, dashes and case are ignored so a code can be typed as shown."""
    normalized = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(normalized.encode()).hexdigest()


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """A user's ten one-time recovery codes, as a django-otp device so a code
    verifies a sign-in like the authenticator does. Only hashes are stored."""

    def get_throttle_factor(self) -> int:
        # Each failure doubles the wait before the next try, starting at one second.
        return 1

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        # Deleting the row is the "used" mark: two requests cannot both use one code.
        used, _ = self.codes.filter(code_hash=hash_recovery_code(str(token))).delete()
        if used:
            self.throttle_reset()
        else:
            self.throttle_increment()
        return bool(used)


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64, db_index=True)


class UserSession(models.Model):
    """A signed-in session as the user's session list shows it (organizations.sessions).
    The session itself is Django's; this row names its device, address and last use."""

    session_key = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="clacks_sessions")
    user_agent = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"session of {self.user} last seen {self.last_seen:%Y-%m-%d %H:%M}"


class Profile(models.Model):
    """A person's own preferences, one row per user once they save one (organizations.timezones)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, models.CASCADE, related_name="clacks_profile")
    # An IANA zone name ("Europe/Paris"); "" follows the browser's zone (docs/time.md).
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"
