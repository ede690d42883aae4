"""Forms of share links: creating one (admins) and giving a link's password (visitors)."""

from __future__ import annotations

from django import forms

from dashboard.models import SHARE_SECTIONS, ShareLink
from organizations.forms import NoColon

MAX_SHARE_DAYS = 3650


class ShareLinkForm(NoColon, forms.Form):
    label = forms.CharField(
        max_length=100, required=False, help_text="For your own list, e.g. who you gave it to. Not shown on the page."
    )
    sections = forms.MultipleChoiceField(
        choices=SHARE_SECTIONS,
        widget=forms.CheckboxSelectMultiple,
        initial=["overview"],
        error_messages={"required": "Choose at least one section to share."},
    )
    password = forms.CharField(
        required=False,
        max_length=200,
        min_length=8,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional, at least 8 characters. Visitors type it once per browser session.",
    )
    valid_days = forms.IntegerField(
        label="Expires after (days)",
        required=False,
        min_value=1,
        max_value=MAX_SHARE_DAYS,
        help_text="Leave empty for a link that works until you revoke it.",
    )

    def clean(self):
        data = super().clean()
        if "badges" in (data.get("sections") or []) and data.get("password"):
            self.add_error(
                "password", "Badges are images in a README, which cannot send a password: untick Badges or leave this empty."
            )
        return data


class SharePasswordForm(NoColon, forms.Form):
    password = forms.CharField(
        max_length=200, strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class RevokeShareForm(forms.Form):
    link = forms.ModelChoiceField(queryset=ShareLink.objects.none(), to_field_name="pk")

    def __init__(self, *args, app, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["link"].queryset = ShareLink.objects.filter(app=app, revoked_at__isnull=True)
