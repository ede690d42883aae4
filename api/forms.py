"""The API keys page's form (api/key_views.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from api.models import Scope
from organizations.forms import NameField, NoColon
from telemetry.periods import UTC

MAX_EXPIRY_DAYS = 3650


class ApiKeyForm(NoColon, forms.Form):
    name = NameField(label="Name", help_text="What the key is for, e.g. “CI release check” or “README badge script”.")
    scopes = forms.MultipleChoiceField(
        label="Scopes", choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ],
        help_text="Grant only what the key's user needs.",
    )  # fmt: skip
    expires_on = forms.DateField(
        label="Expires on (UTC, optional)", required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The key stops working at the start of this UTC day. Leave empty for a key that does not expire.",
    )  # fmt: skip

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        today = timezone.now().astimezone(UTC).date()
        if day <= today:
            raise forms.ValidationError("Pick a day after today.")
        if day > today + timedelta(days=MAX_EXPIRY_DAYS):
            raise forms.ValidationError(f"Pick a day within {MAX_EXPIRY_DAYS // 365} years.")
        return day

    @property
    def expires_at(self) -> datetime | None:
        day = self.cleaned_data["expires_on"]
        return datetime.combine(day, time.min, UTC) if day else None
