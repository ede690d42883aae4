"""Forms of the export and erasure pages."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from telemetry import lifecycle
from telemetry.periods import InvalidRange, day_range


class DateInput(forms.DateInput):
    input_type = "date"


def _default_from():
    return timezone.now().date() - timedelta(days=29)


def _default_to():
    return timezone.now().date()


class ExportForm(forms.Form):
    date_from = forms.DateField(label="From", widget=DateInput, initial=_default_from)
    date_to = forms.DateField(label="To (included)", widget=DateInput, initial=_default_to)
    format = forms.ChoiceField(
        choices=[("csv", "CSV (spreadsheets)"), ("jsonl", "JSON Lines (one event per line, as the SDK sent it)")],
        widget=forms.RadioSelect,
        initial="csv",
    )

    def clean(self):
        cleaned = super().clean()
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        if first and last:
            try:
                cleaned["time_range"] = day_range(first, last)
            except InvalidRange as exc:
                self.add_error("date_to", str(exc))
        return cleaned


class EraseLookupForm(forms.Form):
    user_id = forms.CharField(
        label="User id",
        max_length=lifecycle.MAX_USER_ID_LENGTH,
        help_text="The SDK's anonymous id, as the person's telemetry-kit reports it (client_…).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 80}),
    )


class EraseConfirmForm(forms.Form):
    user_id = forms.CharField(max_length=lifecycle.MAX_USER_ID_LENGTH, widget=forms.HiddenInput)
    confirm_user_id = forms.CharField(
        label="Type the user id again to confirm",
        max_length=lifecycle.MAX_USER_ID_LENGTH,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 80}),
    )

    def clean(self):
        cleaned = super().clean()
        user_id, typed = cleaned.get("user_id"), cleaned.get("confirm_user_id")
        if user_id and typed and typed != user_id:
            self.add_error("confirm_user_id", "This does not match the user id being erased.")
        return cleaned
