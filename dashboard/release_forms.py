"""The Releases page's own GET form: how many releases behind counts as old."""

from __future__ import annotations

from django import forms

from dashboard.releases import DEFAULT_BEHIND

MAX_BEHIND = 100


class BehindForm(forms.Form):
    behind = forms.IntegerField(
        label="More than how many releases behind",
        min_value=0,
        max_value=MAX_BEHIND,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "narrow"}),
    )

    def limit(self) -> int:
        """N as asked for, or the default when the field is empty or wrong (the form then says why)."""
        if self.is_valid() and self.cleaned_data["behind"] is not None:
            return self.cleaned_data["behind"]
        return DEFAULT_BEHIND
