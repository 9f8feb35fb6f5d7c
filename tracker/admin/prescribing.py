"""Prescribing from the patient: every regimen kind, a preview in the patient's wall-clock time.

The patient is fixed by the URL (the patient page and the timeline link here); the form
chooses the drug, dose and regimen, previews the next planned doses without saving, and
saves through ``services.prescriptions`` (one code path with the API and the demo).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tracker import clinical, scheduling
from tracker.admin.scoping import restrict_to_clinic
from tracker.dose_checks import dose_guidance, suggested_indications
from tracker.models import Clinician, Drug, Patient, Route
from tracker.regimens import WEEKDAY_NAMES, Regimen, RegimenKind
from tracker.services.prescriptions import ScheduleSpec

ISO_DATE = "%Y-%m-%d"  # what <input type="date"> reads and writes, whatever the locale


def date_input() -> forms.DateInput:
    """A date input that renders its value (a localized "06/12/2026" leaves type=date blank)."""
    return forms.DateInput(attrs={"type": "date"}, format=ISO_DATE)


def parse_times(value: str) -> list[str]:
    """ "08:00, 20:00" -> ["08:00", "20:00"]; the schedule model judges the values."""
    return [part for part in value.replace(";", ",").replace(" ", ",").split(",") if part]


class DrugChoiceField(forms.ModelChoiceField):
    """Each drug with its unit, usual range and maximum for this patient (§6), beside the dose."""

    patient: Patient | None = None

    def label_from_instance(self, obj: Drug) -> str:
        return f"{obj} — {dose_guidance(obj, self.patient)}"


class SuggestingInput(forms.TextInput):
    """A free-text input with a <datalist> of suggestions (the label's indications)."""

    def __init__(self, suggestions: list[str], list_id: str) -> None:
        super().__init__(attrs={"list": list_id})
        self.suggestions, self.list_id = suggestions, list_id

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> SafeString:
        options = format_html_join("", '<option value="{}"></option>', ((s,) for s in self.suggestions))
        return format_html(
            '{}<datalist id="{}">{}</datalist>', super().render(name, value, attrs, renderer), self.list_id, options
        )


class RegimenFields(forms.Form):
    """How the doses are given; which fields count depends on the regimen chosen."""

    class Media:
        js = ["tracker/regimen.js"]  # hides the fields the chosen regimen does not use

    regimen = forms.ChoiceField(choices=RegimenKind.choices, initial=RegimenKind.TIMES, widget=forms.RadioSelect)
    times_of_day = forms.CharField(
        initial="08:00",
        label="Times of day",
        help_text='Local wall-clock times in the patient\'s zone, e.g. "08:00, 20:00". '
        "Phases and series use the first time for every session.",
    )
    weekdays = forms.TypedMultipleChoiceField(
        choices=list(enumerate(WEEKDAY_NAMES)),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Weekdays, esketamine clinic days (the start date's day and one other) or infusion days.",
    )
    interval_days = forms.IntegerField(
        min_value=2, max_value=90, required=False, label="Every N days", help_text="For every-N-days regimens."
    )
    prn_max_doses_per_day = forms.IntegerField(
        min_value=1, max_value=12, required=False, label="As needed: most doses a day"
    )
    continuation_every_weeks = forms.TypedChoiceField(
        choices=[(2, "every 2 weeks"), (1, "weekly")],
        coerce=int,
        initial=2,
        label="Esketamine from week 9",
        help_text="§1: the least frequent schedule that keeps the response.",
    )
    infusions = forms.IntegerField(
        min_value=1,
        max_value=24,
        required=False,
        initial=lambda: clinical.get("KETAMINE_SERIES_INFUSIONS"),  # §2 course
        label="Ketamine infusions in the series",
    )

    def clean_times_of_day(self) -> list[str]:
        return parse_times(self.cleaned_data["times_of_day"])

    def regimen_value(self) -> Regimen:
        data = self.cleaned_data
        return Regimen(
            kind=data["regimen"],
            times_of_day=data["times_of_day"],
            weekdays=data.get("weekdays") or (),
            interval_days=data.get("interval_days") or 1,
            prn_max_doses_per_day=data.get("prn_max_doses_per_day"),
            continuation_every_weeks=data.get("continuation_every_weeks") or 2,
            infusions=data.get("infusions"),
        )


class PrescriberChoiceMixin(forms.Form):
    """Adds a prescriber choice only for superusers, who are not prescribers themselves."""

    def __init__(self, *args: Any, request: Any, choose_prescriber: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if choose_prescriber:
            self.fields["prescriber"] = forms.ModelChoiceField(
                queryset=restrict_to_clinic(
                    Clinician.objects.filter(role=Clinician.Role.PRESCRIBER, is_active=True).select_related("user"),
                    request,
                ),
                help_text="You are not a prescriber yourself: choose who prescribes.",
            )


class PrescribeForm(PrescriberChoiceMixin, RegimenFields):
    drug = DrugChoiceField(
        queryset=Drug.objects.order_by("display_name"), help_text="With its unit, usual range and maximum."
    )
    dose = forms.DecimalField(max_digits=8, decimal_places=2, help_text="Amount per dose, in the drug's unit.")
    route = forms.ChoiceField(choices=[("", "The drug's usual route"), *Route.choices], required=False)
    start_date = forms.DateField(widget=date_input(), help_text="The first day, in the patient's zone.")
    end_date = forms.DateField(required=False, widget=date_input())
    indication = forms.CharField(required=False, max_length=200)

    field_order = ["drug", "dose", "route", "regimen", "times_of_day", "weekdays", "interval_days"]

    def __init__(self, *args: Any, patient: Patient, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["drug"].patient = patient
        suggestions = [text for drug in self.fields["drug"].queryset for text in suggested_indications(drug)]
        self.fields["indication"].widget = SuggestingInput(suggestions, "indication-suggestions")
        self.fields["indication"].help_text = "Free text; the esketamine label's indications are offered as you type."

    def schedule_specs(self) -> list[ScheduleSpec]:
        """The regimen's schedules; a ServiceError names the field that does not fit."""
        data = self.cleaned_data
        return self.regimen_value().specs(drug=data["drug"], start_date=data["start_date"], end_date=data["end_date"])


class RescheduleForm(PrescriberChoiceMixin, RegimenFields):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why the times or days change (kept with the new schedule version).",
    )


class ChangeDoseForm(PrescriberChoiceMixin):
    new_dose = forms.DecimalField(max_digits=8, decimal_places=2, help_text="Amount per dose, in the drug's unit.")
    effective_date = forms.DateField(widget=date_input(), help_text="The first day of the new dose.")
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Titration, taper, side effects... kept with the new version.",
    )


def can_prescribe(request: Any) -> bool:
    """Whether to offer "Prescribe": a prescriber of the clinic, or a superuser naming one."""
    from tracker.admin.scoping import clinician_for

    if not request.user.has_perm("tracker.add_prescription"):
        return False
    membership = clinician_for(request)
    return request.user.is_superuser or (membership is not None and membership.can_prescribe)


def preview_doses(
    patient: Patient, drug: Drug, specs: list[ScheduleSpec], start: dt.date, end: dt.date | None
) -> list[str]:
    """The next planned doses, as the patient's wall clock will show them, with the zone named."""
    instants = scheduling.preview(
        specs=specs,
        zone=patient.zone,
        rx_start_date=start,
        rx_end_date=end,
        drug_class=drug.drug_class,
        after=timezone.now(),
    )
    zone = patient.zone
    return [
        f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"
        for local in (i.astimezone(zone) for i in instants)
    ]


def show_service_error(form: forms.Form, exc: ValidationError, field_map: dict[str, str] | None = None) -> None:
    from tracker.admin.scoping import apply_validation_error

    apply_validation_error(form, exc, {"schedules": "times_of_day", **(field_map or {})})


def warn(request: Any, texts: list[str]) -> None:
    for text in texts:
        messages.warning(request, text)
