"""Weights and the other clinical measurements: clinicians record them here, from the patient page.

The add form makes one call to ``record_weight``, which also updates the patient's current
weight. A recorded weight is never edited or deleted: a wrong one is marked entered in
error (the list's action), which hands the current weight back to the latest remaining one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from tracker.admin.prescriptions import SERVICE_FORM_TEMPLATE
from tracker.admin.scoping import EnteredInErrorFilter, ScopedHistoryAdmin, apply_validation_error, restrict_to_clinic
from tracker.models import ClinicalMeasurement, Patient, WeightMeasurement
from tracker.models.measurements import MEASUREMENT_KINDS
from tracker.monitoring import bmi_by_weight
from tracker.services.measurements import record_measurement, record_weight

LOCAL_DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class WeightForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    weight_kg = forms.DecimalField(label="Weight (kg)", max_digits=5, decimal_places=1, help_text="In kilograms.")
    measured_at = forms.DateTimeField(
        label="Measured at",
        required=False,
        input_formats=[LOCAL_DATETIME_FORMAT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_DATETIME_FORMAT),
        help_text="Date and time in the patient's own time zone; leave blank for now.",
    )
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Anything that affects the reading (e.g. weighed in clothes).",
    )

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = restrict_to_clinic(Patient.objects.current().filter(is_active=True), request)

    def clean(self) -> dict[str, Any]:
        return patient_local(super().clean())


@admin.register(WeightMeasurement)
class WeightMeasurementAdmin(ScopedHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ["measured_at", "patient", "weight_kg", "bmi", "recorded_by", "note"]
    list_filter = [EnteredInErrorFilter]
    list_select_related = ["patient", "recorded_by"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number"]
    date_hierarchy = "measured_at"

    def get_readonly_fields(self, request: HttpRequest, obj: WeightMeasurement | None = None) -> list[str]:
        # Never edited in place: a wrong weight is marked entered in error and a new one recorded.
        return [f.name for f in self.opts.fields if f.name != "id"]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Record a weight through the service; back to the patient's page when it is saved."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"patient": request.GET.get("patient")}
        form = WeightForm(request.POST if request.method == "POST" else None, initial=initial, request=request)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                measurement = record_weight(
                    patient=data["patient"],
                    weight_kg=data["weight_kg"],
                    measured_at=data["measured_at"],
                    note=data["note"],
                    recorded_by=request.user,
                )
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                self.log_addition(request, measurement, [{"added": {}}])
                patient = measurement.patient
                bmi = bmi_by_weight([measurement]).get(measurement.pk)
                bmi_text = f" BMI {bmi} kg/m²." if bmi is not None else " No height on record, so no BMI."
                self.message_user(
                    request,
                    f"Recorded {measurement.weight_kg} kg for {patient}. Current weight: {patient.weight_kg} kg."
                    + bmi_text,
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:tracker_patient_change", args=[quote(patient.pk)]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add weight",
            "form": form,
            "submit_label": "Record weight",
            "intro": "The latest weight on record becomes the patient's current weight "
            "(used for weight-based doses such as IV ketamine).",
        }
        return TemplateResponse(request, SERVICE_FORM_TEMPLATE, context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WeightMeasurement]:
        return super().get_queryset(request).select_related("patient", "recorded_by")

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # Every BMI of the page from one query of the page's patients' heights, not one a row.
        self._bmi = bmi_by_weight(list(changelist.result_list))
        return changelist

    @admin.display(description="BMI (kg/m²)")
    def bmi(self, obj: WeightMeasurement) -> str:
        bmi = getattr(self, "_bmi", {}).get(obj.pk)
        return f"{bmi}" if bmi is not None else "no height on record"


def patient_local(cleaned: dict[str, Any]) -> dict[str, Any]:
    """The form read the typed wall-clock time in the server's zone; it means the patient's."""
    patient, measured_at = cleaned.get("patient"), cleaned.get("measured_at")
    if patient is not None and measured_at is not None:
        typed = timezone.make_naive(measured_at, timezone.get_current_timezone())
        cleaned["measured_at"] = typed.replace(tzinfo=patient.zone)
    return cleaned


def kind_choices() -> list[tuple[str, str]]:
    """Each kind with the units it may be typed in, the stored one first ("Fasting glucose (mg/dL or mmol/L)")."""
    return [(k.value, f"{k.label} ({' or '.join(MEASUREMENT_KINDS[k].unit_labels)})") for k in ClinicalMeasurement.Kind]


def unit_choices() -> list[tuple[str, str]]:
    """Blank (the measurement's own unit), then every unit some kind may be typed in."""
    units = dict.fromkeys(label for spec in MEASUREMENT_KINDS.values() for label in spec.unit_labels)
    return [("", "As shown beside the measurement"), *((u, u) for u in units)]


class MeasurementForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    kind = forms.ChoiceField(label="Measurement", choices=kind_choices)
    value = forms.DecimalField(
        label="Value", max_digits=7, decimal_places=2, help_text="In the unit below; for blood pressure the systolic."
    )
    unit = forms.ChoiceField(
        label="Unit",
        choices=unit_choices,
        required=False,
        help_text="Glucose and lipids may be typed in mmol/L, as UK laboratories report them; "
        "they are stored and exported in mg/dL.",
    )
    diastolic = forms.DecimalField(
        label="Diastolic (mmHg)",
        required=False,
        max_digits=5,
        decimal_places=1,
        help_text="Blood pressure only: the lower number.",
    )
    measured_at = WeightForm.base_fields["measured_at"]
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Anything that affects the reading (e.g. not fasting, after exercise).",
    )

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = restrict_to_clinic(Patient.objects.current().filter(is_active=True), request)
        when = "Date and time in the patient's own time zone (for a blood test, when blood was drawn)"
        self.fields["measured_at"].help_text = f"{when}; blank for now."

    def clean(self) -> dict[str, Any]:
        return patient_local(super().clean())


def recorded_message(measurement: ClinicalMeasurement, data: dict[str, Any]) -> str:
    """'Recorded Fasting glucose 93.68 mg/dL (entered as 5.2 mmol/L) for …': the stored value, and what was typed."""
    spec, unit = measurement.spec, data.get("unit") or ""
    typed = ""
    if unit and spec.factor(unit) not in (None, 1):
        typed = f" (entered as {data['value'].normalize():f} {spec.label_of(unit)})"
    return f"Recorded {measurement.get_kind_display()} {measurement.display_value}{typed} for {measurement.patient}."


@admin.register(ClinicalMeasurement)
class ClinicalMeasurementAdmin(ScopedHistoryAdmin):
    """Height, blood pressure, pulse, fasting glucose, HbA1c and the lipids, each in its unit."""

    clinic_lookup = "patient__clinic"
    list_display = ["measured_at", "patient", "kind", "reading", "recorded_by", "note"]
    list_filter = ["kind", EnteredInErrorFilter]
    list_select_related = ["patient", "recorded_by"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number"]
    date_hierarchy = "measured_at"

    @admin.display(description="Reading", ordering="value")
    def reading(self, obj: ClinicalMeasurement) -> str:
        """The stored value and unit, then the same in the other units it is read in ("93.68 mg/dL (5.2 mmol/L)")."""
        other = obj.spec.in_other_units(obj.value) if obj.kind in MEASUREMENT_KINDS else ""
        return f"{obj.display_value} ({other})" if other else obj.display_value

    def get_readonly_fields(self, request: HttpRequest, obj: ClinicalMeasurement | None = None) -> list[str]:
        # Never edited in place: a wrong reading is marked entered in error and a new one recorded.
        return [f.name for f in self.opts.fields if f.name != "id"]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Record a measurement through the service; back to the patient's page when it is saved."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"patient": request.GET.get("patient"), "kind": request.GET.get("kind")}
        form = MeasurementForm(request.POST if request.method == "POST" else None, initial=initial, request=request)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                measurement = record_measurement(**data, recorded_by=request.user)
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                self.log_addition(request, measurement, [{"added": {}}])
                patient = measurement.patient
                self.message_user(request, recorded_message(measurement, data), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:tracker_patient_change", args=[quote(patient.pk)]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add measurement",
            "form": form,
            "submit_label": "Record measurement",
            "intro": "Height (for BMI), blood pressure and pulse outside sessions, and blood results "
            "(fasting glucose, HbA1c, lipids). Each is checked against a plausible range for its unit.",
        }
        return TemplateResponse(request, SERVICE_FORM_TEMPLATE, context)
