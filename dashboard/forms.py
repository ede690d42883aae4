"""GET forms of the analytics pages: the time range and the explorer's filters.

Both read the query string; bad input becomes a form error shown on the
page, and the page falls back to a sensible default rather than failing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django import forms
from django.utils import timezone

from dashboard import stats
from telemetry.periods import UTC

CUSTOM = "custom"
# Far enough back for any telemetry, and far enough from year 1 that the
# previous period of the longest range is still a valid date.
EARLIEST = date(2000, 1, 1)


class RangeForm(forms.Form):
    range = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in stats.PRESETS.items()] + [(CUSTOM, "Custom")],
        required=False,
    )
    start = forms.DateField(label="From (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (UTC, included)", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, now: datetime):
        super().__init__(data)
        self.now = now

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        # Dates mean a custom range, whatever preset the form carried along
        # (the filter bar keeps the preset in effect in a hidden field).
        if cleaned.get("range") == CUSTOM or start or end:
            cleaned["range"] = CUSTOM
            if self.errors:
                return cleaned
            if start is None or end is None:
                raise forms.ValidationError("A custom range needs both a start and an end date.")
            if end < start:
                raise forms.ValidationError("The end date is before the start date.")
            today = self.now.astimezone(UTC).date()
            if start > today:
                raise forms.ValidationError("The start date is in the future; there are no events yet.")
            # A day of slack: "today" where the viewer is may be tomorrow in UTC.
            if end > today + timedelta(days=1):
                raise forms.ValidationError("The end date is in the future; pick today or earlier.")
            if start < EARLIEST:
                raise forms.ValidationError(f"Pick a start date from {EARLIEST.day} {EARLIEST:%B %Y} on.")
            if stats.period_of_days(start, end).length > stats.MAX_RANGE:
                raise forms.ValidationError(f"A range can span at most {stats.MAX_RANGE.days} days.")
        return cleaned

    @property
    def preset(self) -> str:
        """The preset in effect (the default one when the form is empty or invalid)."""
        if self.is_valid() and self.cleaned_data["range"]:
            return self.cleaned_data["range"]
        return stats.DEFAULT_PRESET

    def time_range(self) -> stats.Period:
        """The range asked for, or the default preset when the form is invalid."""
        preset = self.preset
        if preset == CUSTOM:
            return stats.period_of_days(self.cleaned_data["start"], self.cleaned_data["end"])
        return stats.preset_range(preset, now=self.now)


class EventFilterForm(forms.Form):
    type = forms.CharField(label="Event type", required=False, max_length=200)
    user = forms.CharField(label="User", required=False, max_length=200)
    session = forms.CharField(label="Session", required=False, max_length=200)
    since = forms.DateTimeField(
        # Not "From": the filter bar above it has a "From (UTC)" day of its own.
        label="Since (UTC)",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="Until (UTC)",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Django reads a naive date and time in the active zone, the viewer's (docs/time.md),
        # which is also the zone of the event times listed under the form: say which.
        zone = timezone.get_current_timezone_name()
        self.fields["since"].label = f"Since ({zone})"
        self.fields["until"].label = f"Until ({zone})"

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until <= since:
            raise forms.ValidationError("“Until” must be after “Since”.")
        return cleaned

    def filters(self) -> stats.EventFilters:
        """The filters asked for; none at all when the form is invalid."""
        if not self.is_valid():
            return stats.EventFilters()
        data = self.cleaned_data
        return stats.EventFilters(
            event_type=data["type"].strip(),
            user_id=data["user"].strip(),
            session_id=data["session"].strip(),
            start=data["since"].astimezone(UTC) if data["since"] else None,
            end=data["until"].astimezone(UTC) if data["until"] else None,
        )

    @property
    def active(self) -> bool:
        return self.is_valid() and any(self.cleaned_data[name] for name in self.fields)

