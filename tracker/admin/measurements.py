"""Weights: clinicians record them here (usually from the patient page's "Add weight").

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
from tracker.models import Patient, WeightMeasurement
from tracker.services.measurements import record_weight

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
        cleaned = super().clean()
        patient, measured_at = cleaned.get("patient"), cleaned.get("measured_at")
        if patient is not None and measured_at is not None:
            # The form read the typed wall-clock time in the server's zone; it means the patient's.
            typed = timezone.make_naive(measured_at, timezone.get_current_timezone())
            cleaned["measured_at"] = typed.replace(tzinfo=patient.zone)
        return cleaned


@admin.register(WeightMeasurement)
class WeightMeasurementAdmin(ScopedHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ["measured_at", "patient", "weight_kg", "recorded_by", "note"]
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
                self.message_user(
                    request,
                    f"Recorded {measurement.weight_kg} kg for {patient}. Current weight: {patient.weight_kg} kg.",
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
