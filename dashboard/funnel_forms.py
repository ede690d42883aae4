"""The funnel form: a name, up to MAX_STEPS ordered steps and a conversion window.

Each step is an event type and, for command_execution and feature_used
events, optionally the command or feature it must be. Empty rows are left
out, so steps can be removed by clearing them; what is left keeps its order.
"""

from __future__ import annotations

from django import forms

from dashboard.funnels import Step
from dashboard.models import MAX_STEPS, WINDOWS, Funnel
from organizations.models import App
from telemetry.models import STEP_NAME_MAX, STEP_NAMED_TYPES, Event

MIN_STEPS = 2
TYPE_MAX = Event._meta.get_field("event_type").max_length
TAKEN = "This app already has a funnel with that name."


class FunnelForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, error_messages={"required": "Give the funnel a name."})
    window = forms.TypedChoiceField(
        label="Conversion window",
        choices=WINDOWS,
        coerce=int,
        initial=WINDOWS[2][0],
        help_text="How long a user has, from their first step, to do every later step.",
        error_messages={"invalid_choice": "Pick one of the windows offered."},
    )

    def __init__(self, *args, app: App, funnel: Funnel | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app, self.funnel = app, funnel
        for i in range(1, MAX_STEPS + 1):
            self.fields[f"step_{i}_type"] = forms.CharField(
                label=f"Step {i} event type",
                required=False,
                max_length=TYPE_MAX,
                widget=forms.TextInput(attrs={"list": "funnel-event-types", "autocomplete": "off"}),
                error_messages={"max_length": f"Step {i}: an event type is at most {TYPE_MAX} characters."},
            )
            self.fields[f"step_{i}_name"] = forms.CharField(
                label=f"Step {i} command or feature",
                required=False,
                max_length=STEP_NAME_MAX,
                widget=forms.TextInput(attrs={"list": "funnel-step-names", "autocomplete": "off"}),
                error_messages={"max_length": f"Step {i}: a command or feature name is at most {STEP_NAME_MAX} characters."},
            )
        if funnel is not None and not self.is_bound:
            self.initial.update(name=funnel.name, window=funnel.window_seconds)
            for i, item in enumerate(funnel.steps, start=1):
                self.initial[f"step_{i}_type"] = item.get("type", "")
                self.initial[f"step_{i}_name"] = item.get("name", "")

    def step_rows(self) -> list[tuple[int, forms.BoundField, forms.BoundField]]:
        """(number, type field, name field) per step row, for the template."""
        return [(i, self[f"step_{i}_type"], self[f"step_{i}_name"]) for i in range(1, MAX_STEPS + 1)]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        taken = Funnel.objects.filter(app=self.app, name=name)
        if self.funnel is not None:
            taken = taken.exclude(pk=self.funnel.pk)
        if taken.exists():
            raise forms.ValidationError(TAKEN)
        return name

    def clean(self):
        cleaned = super().clean()
        steps, errors = [], []
        for i in range(1, MAX_STEPS + 1):
            kind, name = cleaned.get(f"step_{i}_type"), cleaned.get(f"step_{i}_name")
            if kind is None or name is None:
                continue  # the field has its own error
            if not kind and not name:
                continue
            if not kind:
                errors.append(f"Step {i}: pick the event type of “{name}” (command_execution or feature_used).")
            elif name and kind not in STEP_NAMED_TYPES:
                errors.append(
                    f"Step {i}: only command_execution (a command) and feature_used (a feature) steps take a name; "
                    f"clear the name or change the type."
                )
            else:
                steps.append(Step(type=kind, name=name))
        if errors:
            raise forms.ValidationError(errors)
        if len(steps) < MIN_STEPS:
            raise forms.ValidationError(f"A funnel needs at least {MIN_STEPS} steps; fill in the event type of each.")
        cleaned["steps"] = steps
        return cleaned
