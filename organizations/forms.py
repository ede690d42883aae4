"""Forms for the admin pages. Every POST goes through one of these (CSRF included)."""

from __future__ import annotations

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, UserCreationForm

from organizations.models import RETENTION_PRESETS, Credential, Role, Tier
from organizations.timezones import zone_names

MAX_RETENTION_DAYS = 36500  # a hundred years; anything longer is "keep forever"


class NoColon:
    """Labels without Django's trailing colon, so a label reads the same as its accessible name."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class NameField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("strip", True)
        super().__init__(**kwargs)


# --- Accounts -------------------------------------------------------------------------


class SetupForm(NoColon, UserCreationForm):
    """The first administrator, and optionally the first organization they own."""

    email = forms.EmailField(required=False, help_text="Optional.")
    organization_name = NameField(
        required=False,
        label="First organization",
        help_text="Optional: you become its owner. You can create organizations later too.",
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class SignupForm(NoColon, UserCreationForm):
    """A new account created by accepting an invitation."""

    email = forms.EmailField(required=False, help_text="Optional.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class LoginForm(NoColon, AuthenticationForm):
    """Django's sign-in form. Throttling is django-axes' (organizations.lockout)."""


class PasswordForm(NoColon, PasswordChangeForm):
    pass


class SetPasswordForm(NoColon, auth_forms.SetPasswordForm):
    pass


class PasswordResetForm(NoColon, auth_forms.PasswordResetForm):
    pass


class CodeForm(NoColon, forms.Form):
    """A code from the authenticator app, or (where `recovery` allows) a recovery code."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, recovery: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].help_text = (
            "The 6-digit code from your authenticator app, or one of your recovery codes."
            if recovery
            else "The 6-digit code your authenticator app shows."
        )


class RequireTwoFactorForm(NoColon, forms.Form):
    require_two_factor = forms.BooleanField(
        required=False,
        label="Require two-factor sign-in",
        help_text="Members without it are led to set it up at their next sign-in, before they see the organization.",
    )


# --- Organizations --------------------------------------------------------------------


class OrganizationCreateForm(NoColon, forms.Form):
    name = NameField(label="Organization name")


class OrganizationSettingsForm(NoColon, forms.Form):
    name = NameField(label="Name")
    tier = forms.ChoiceField(choices=Tier.choices, help_text="Sets the ingest rate limits and quotas.")


class RetentionForm(NoColon, forms.Form):
    """Retention as a preset, a custom number of days, forever, or (for apps) the organization's default."""

    INHERIT, CUSTOM, FOREVER = "inherit", "custom", "forever"

    choice = forms.ChoiceField(label="Keep events for", widget=forms.RadioSelect)
    custom_days = forms.IntegerField(
        label="Custom number of days", required=False, min_value=1, max_value=MAX_RETENTION_DAYS
    )

    # Archive before delete (docs/archive.md). Left out of a POST: unchanged.
    archive = forms.ChoiceField(label="Before deleting", widget=forms.RadioSelect, required=False)

    def __init__(
        self,
        *args,
        allow_inherit: bool = False,
        organization_days: int | None = None,
        organization_archive: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        choices = []
        if allow_inherit:
            default = "forever" if organization_days is None else f"{organization_days} days"
            choices.append((self.INHERIT, f"Organization default ({default})"))
        choices += [(str(days), f"{days} days") for days in RETENTION_PRESETS]
        choices += [(self.CUSTOM, "Custom"), (self.FOREVER, "Keep forever")]
        self.fields["choice"].choices = choices
        archive_choices = [("on", "Archive the events (Parquet files), then delete them"), ("off", "Delete them without archiving")]
        if allow_inherit:
            default = "archive" if organization_archive else "do not archive"
            archive_choices.insert(0, (self.INHERIT, f"Organization default ({default})"))
        self.fields["archive"].choices = archive_choices

    @classmethod
    def archive_initial(cls, archive: bool | None) -> str:
        """The archive field's value for a stored choice (None: the organization's default)."""
        return cls.INHERIT if archive is None else ("on" if archive else "off")

    @property
    def archive_choice(self) -> bool | None:
        """True or False, None to follow the organization; raises KeyError when the POST left it out."""
        value = self.cleaned_data.get("archive") or ""
        if not value:
            raise KeyError("archive")
        return None if value == self.INHERIT else value == "on"

    @classmethod
    def initial_for(cls, days: int | None, *, inherit: bool = False) -> dict:
        if inherit:
            return {"choice": cls.INHERIT}
        if days is None:
            return {"choice": cls.FOREVER}
        if days in RETENTION_PRESETS:
            return {"choice": str(days)}
        return {"choice": cls.CUSTOM, "custom_days": days}

    def clean(self):
        data = super().clean()
        choice = data.get("choice")
        if choice == self.CUSTOM and not data.get("custom_days"):
            self.add_error("custom_days", "Enter a number of days for a custom retention.")
        return data

    @property
    def inherit(self) -> bool:
        return self.cleaned_data["choice"] == self.INHERIT

    @property
    def days(self) -> int | None:
        """The chosen number of days; None for forever (and for inherit)."""
        choice = self.cleaned_data["choice"]
        if choice in (self.INHERIT, self.FOREVER):
            return None
        if choice == self.CUSTOM:
            return self.cleaned_data["custom_days"]
        return int(choice)


# --- Members --------------------------------------------------------------------------


class InviteForm(NoColon, forms.Form):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)
    email = forms.EmailField(
        required=False, help_text="Optional, for your own records: no email is sent. Share the link yourself."
    )
    valid_days = forms.IntegerField(label="Link valid for (days)", initial=7, min_value=1, max_value=30)


class RoleForm(NoColon, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ConfirmForm(NoColon, forms.Form):
    """A POST with no fields but the CSRF token: remove, revoke, reveal, rotate."""


# --- Apps -----------------------------------------------------------------------------


class AppNameForm(NoColon, forms.Form):
    name = NameField(label="App name", help_text="Usually the name of your command-line tool or service.")


class AppStateForm(NoColon, forms.Form):
    """Enable ("on") or disable (empty) an app or an organization."""

    is_active = forms.BooleanField(required=False)


class DeleteAppForm(NoColon, forms.Form):
    confirm = forms.CharField(label="Type the app's name to confirm", max_length=100, strip=True)

    def __init__(self, *args, app_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.app_name = app_name

    def clean_confirm(self):
        value = self.cleaned_data["confirm"]
        if value != self.app_name:
            raise forms.ValidationError(f"That is not the app's name. Type “{self.app_name}” exactly to delete it.")
        return value


class CredentialForm(NoColon, forms.Form):
    """Names one credential set of the app (by primary key, checked against the app)."""

    credential = forms.ModelChoiceField(queryset=Credential.objects.none(), widget=forms.HiddenInput)

    def __init__(self, *args, app, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.active().filter(app=app).select_related("app__organization")




class TimeZoneForm(NoColon, forms.Form):
    """The profile's time zone: an IANA name, or "" to follow the browser (organizations.timezones)."""

    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Every time on the pages is shown in it, with its abbreviation; hover a time for UTC.",
    )

    def __init__(self, *args, browser_zone: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        browser = f"Follow my browser ({browser_zone})" if browser_zone else "Follow my browser"
        self.fields["time_zone"].choices = [("", browser)] + [(name, name.replace("_", " ")) for name in zone_names()]
