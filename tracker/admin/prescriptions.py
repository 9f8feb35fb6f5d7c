"""Prescriptions and schedules. Prescribing and dose changes go through the services.

A dose never changes in place: "Change dose" makes a new version that replaces the old
one, so the admin's own add and edit paths are replaced by two service-backed forms.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from tracker.admin.scoping import (
    ClinicianListFilter,
    EnteredInErrorFilter,
    ScopedHistoryAdmin,
    apply_validation_error,
    clinician_for,
    restrict_to_clinic,
)
from tracker.esketamine import trd_shortfall_for_patient
from tracker.models import Clinician, DoseSchedule, Drug, Patient, Prescription, Route
from tracker.services.prescriptions import ScheduleSpec, change_dose, prescribe

SERVICE_FORM_TEMPLATE = "admin/tracker/service_form.html"
TIME_SEPARATORS = re.compile(r"[,;\s]+")


def parse_times(value: str) -> list[str]:
    """ "08:00, 20:00" -> ["08:00", "20:00"]; the schedule model judges the values."""
    return [part for part in TIME_SEPARATORS.split(value.strip()) if part]


class PrescriberChoiceMixin(forms.Form):
    """Adds a prescriber choice only for superusers, who are not prescribers themselves."""

    def __init__(self, *args: Any, request: HttpRequest, choose_prescriber: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if choose_prescriber:
            self.fields["prescriber"] = forms.ModelChoiceField(
                queryset=restrict_to_clinic(
                    Clinician.objects.filter(role=Clinician.Role.PRESCRIBER, is_active=True).select_related("user"),
                    request,
                ),
                help_text="You are not a prescriber yourself: choose who prescribes.",
            )


class PrescribeForm(PrescriberChoiceMixin):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())
    drug = forms.ModelChoiceField(queryset=Drug.objects.all())
    dose = forms.DecimalField(max_digits=8, decimal_places=2, help_text="Amount per dose, in the drug's unit.")
    route = forms.ChoiceField(
        choices=[("", "The drug's usual route"), *Route.choices],
        required=False,
    )
    times_of_day = forms.CharField(
        initial="08:00",
        help_text='Daily doses at these local times in the patient\'s zone, e.g. "08:00, 20:00".',
    )
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    indication = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, request: HttpRequest, choose_prescriber: bool, **kwargs: Any) -> None:
        super().__init__(*args, request=request, choose_prescriber=choose_prescriber, **kwargs)
        self.fields["patient"].queryset = restrict_to_clinic(Patient.objects.current().filter(is_active=True), request)

    def clean_times_of_day(self) -> list[str]:
        return parse_times(self.cleaned_data["times_of_day"])


class ChangeDoseForm(PrescriberChoiceMixin):
    new_dose = forms.DecimalField(max_digits=8, decimal_places=2, help_text="Amount per dose, in the drug's unit.")
    effective_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="The first day of the new dose."
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Titration, taper, side effects... kept with the new version.",
    )


class PrescriberAccess:
    """Who may prescribe from the admin: a prescriber, or a superuser naming one."""

    @staticmethod
    def acting_prescriber(request: HttpRequest) -> Clinician | None:
        """The user's own prescriber membership; None for a superuser who must choose one."""
        membership = clinician_for(request)
        if membership is not None and membership.can_prescribe:
            return membership
        if request.user.is_superuser:
            return None
        raise PermissionDenied("Only prescribers can prescribe or change a dose.")

    @staticmethod
    def may_prescribe(request: HttpRequest) -> bool:
        membership = clinician_for(request)
        return request.user.is_superuser or (membership is not None and membership.can_prescribe)


@admin.register(Prescription)
class PrescriptionAdmin(ScopedHistoryAdmin):
    clinic_lookup = "patient__clinic"
    list_display = ["patient", "drug", "dose_display", "route", "status", "start_date", "end_date", "prescriber"]
    list_filter = [
        "status",
        "drug__drug_class",
        ("drug", admin.RelatedOnlyFieldListFilter),
        ("prescriber", ClinicianListFilter),
        EnteredInErrorFilter,
    ]
    list_select_related = ["patient", "drug", "prescriber__user"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number", "drug__name"]
    fields = [
        "patient",
        "drug",
        "dose",
        "dose_unit",
        "route",
        "start_date",
        "end_date",
        "status",
        "prescriber",
        "indication",
        "clinician_marked_failed",
        "change_reason",
        "version_chain",
        "schedules_display",
        "created_at",
        "updated_at",
        "entered_in_error_at",
        "entered_in_error_by",
        "entered_in_error_reason",
    ]
    # Only what does not change the course itself; everything else has a service.
    editable_fields = ("indication", "clinician_marked_failed")

    @admin.display(description="Dose", ordering="dose")
    def dose_display(self, obj: Prescription) -> str:
        return f"{obj.dose.normalize():f} {obj.dose_unit}"

    @admin.display(description="Versions")
    def version_chain(self, obj: Prescription) -> str:
        """Every version of this course, oldest first; one query per step, chains are short."""
        earlier: list[Prescription] = []
        cursor = obj
        while cursor.replaces_id is not None:
            cursor = Prescription.objects.select_related("drug").get(pk=cursor.replaces_id)
            earlier.insert(0, cursor)
        later: list[Prescription] = []
        cursor = obj
        while True:
            try:
                cursor = Prescription.objects.select_related("drug").get(replaces=cursor)
            except ObjectDoesNotExist:
                break
            later.append(cursor)
        if not earlier and not later:
            return "Only version"

        def row(rx: Prescription) -> tuple[str, str, str]:
            label = f"{rx.dose.normalize():f} {rx.dose_unit} from {rx.start_date:%Y-%m-%d} ({rx.get_status_display()})"
            if rx.pk == obj.pk:
                return ("", f"{label} — this version", "")
            url = reverse("admin:tracker_prescription_change", args=[quote(rx.pk)])
            return (url, label, rx.change_reason)

        items = format_html_join(
            "",
            "<li>{}</li>",
            (
                (format_html('<a href="{}">{}</a>{}', url, label, f": {reason}" if reason else "") if url else label,)
                for url, label, reason in map(row, [*earlier, obj, *later])
            ),
        )
        return format_html("<ol>{}</ol>", items)

    @admin.display(description="Schedules")
    def schedules_display(self, obj: Prescription) -> str:
        schedules = obj.schedules.current()
        return ", ".join(str(s) for s in schedules) or "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Prescription | None = None) -> list[str]:
        return [f for f in self.fields if f not in self.editable_fields]

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/change-dose/",
                self.admin_site.admin_view(self.change_dose_view),
                name="tracker_prescription_change_dose",
            ),
        ]
        return custom + super().get_urls()

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Prescription | None = None,
    ) -> HttpResponse:
        context["can_change_dose"] = bool(
            obj is not None
            and obj.status == Prescription.Status.ACTIVE
            and not obj.is_entered_in_error
            and self.has_change_permission(request, obj)
            and PrescriberAccess.may_prescribe(request)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _render_form(
        self, request: HttpRequest, form: forms.Form, *, title: str, submit_label: str, **extra: Any
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "form": form,
            "submit_label": submit_label,
            **extra,
        }
        return TemplateResponse(request, SERVICE_FORM_TEMPLATE, context)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Prescribe through the service: the prescription, a daily schedule and its planned doses."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        prescriber = PrescriberAccess.acting_prescriber(request)
        initial = {"start_date": timezone.localdate(), **request.GET.dict()}
        form = PrescribeForm(
            request.POST if request.method == "POST" else None,
            initial=initial,
            request=request,
            choose_prescriber=prescriber is None,
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                rx = prescribe(
                    patient=data["patient"],
                    drug=data["drug"],
                    dose=data["dose"],
                    start_date=data["start_date"],
                    end_date=data["end_date"],
                    route=data["route"] or None,
                    indication=data["indication"],
                    prescriber=prescriber or data["prescriber"],
                    schedules=[ScheduleSpec(kind=DoseSchedule.Kind.DAILY, times_of_day=data["times_of_day"])],
                )
            except ValidationError as exc:
                apply_validation_error(form, exc)
            else:
                self.log_addition(request, rx, [{"added": {}}])
                self.message_user(request, f"Prescribed {rx} for {rx.patient}.", messages.SUCCESS)
                if rx.drug.in_clinic_only and (shortfall := trd_shortfall_for_patient(rx.patient, rx.start_date)):
                    # §3 action: a warning, not a block; the sweep also raises esk.trd_unconfirmed.
                    self.message_user(request, f"Treatment resistance not confirmed: {shortfall}", messages.WARNING)
                return HttpResponseRedirect(reverse("admin:tracker_prescription_change", args=[quote(rx.pk)]))
        return self._render_form(request, form, title="Prescribe", submit_label="Prescribe")

    def change_dose_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A dose change as a new version of the prescription (service: change_dose)."""
        rx = self.get_object(request, unquote(object_id))  # 404 outside the user's clinic
        if not self.has_change_permission(request, rx):
            raise PermissionDenied
        prescriber = PrescriberAccess.acting_prescriber(request)
        form = ChangeDoseForm(
            request.POST if request.method == "POST" else None,
            initial={"new_dose": rx.dose, "effective_date": timezone.localdate()},
            request=request,
            choose_prescriber=prescriber is None,
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                new = change_dose(
                    prescription=rx,
                    new_dose=data["new_dose"],
                    effective_date=data["effective_date"],
                    reason=data["reason"],
                    prescriber=prescriber or data["prescriber"],
                )
            except ValidationError as exc:
                apply_validation_error(
                    form, exc, {"dose": "new_dose", "start_date": "effective_date", "change_reason": "reason"}
                )
            else:
                self.log_change(request, rx, f"Dose changed: replaced by version {new.pk}.")
                self.log_addition(request, new, f"New version replacing {rx.pk}: {new.change_reason}")
                self.message_user(request, f"Dose changed. This is the new version: {new}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:tracker_prescription_change", args=[quote(new.pk)]))
        if rx.status != Prescription.Status.ACTIVE and request.method == "GET":
            messages.warning(request, "Only an active prescription can have its dose changed.")
        return self._render_form(
            request,
            form,
            title=f"Change dose of {rx}",
            submit_label="Change dose",
            original=rx,
            intro=f"The current version ({rx}) is kept and ends the day before the new dose starts.",
        )


@admin.register(DoseSchedule)
class DoseScheduleAdmin(ScopedHistoryAdmin):
    """Read-only: schedules are made with their prescription (prescribe / change dose)."""

    clinic_lookup = "prescription__patient__clinic"
    list_display = ["prescription", "patient", "kind", "times", "phase", "start_date", "end_date", "planned_until"]
    list_filter = ["kind", "phase", EnteredInErrorFilter]
    list_select_related = ["prescription__drug", "prescription__patient"]
    search_fields = ["prescription__patient__family_name", "=prescription__patient__record_number"]

    @admin.display(description="Patient", ordering="prescription__patient__family_name")
    def patient(self, obj: DoseSchedule) -> Patient:
        return obj.prescription.patient

    @admin.display(description="Times")
    def times(self, obj: DoseSchedule) -> str:
        return str(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[DoseSchedule]:
        return super().get_queryset(request).select_related("prescription__drug", "prescription__patient")

    def get_readonly_fields(self, request: HttpRequest, obj: DoseSchedule | None = None) -> list[str]:
        return [f.name for f in self.opts.fields if f.name != "id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
