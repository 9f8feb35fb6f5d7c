"""Prescriptions and schedules. Prescribing and dose changes go through the services.

A dose never changes in place: "Change dose" makes a new version that replaces the old
one, so the admin's own add and edit paths are replaced by two service-backed forms.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from tracker.admin.prescribing import (
    ChangeDoseForm,
    PrescribeForm,
    RescheduleForm,
    preview_doses,
    show_service_error,
    warn,
)
from tracker.admin.scoping import (
    ClinicianListFilter,
    EnteredInErrorFilter,
    ScopedHistoryAdmin,
    apply_validation_error,
    clinician_for,
    restrict_to_clinic,
)
from tracker.dose_checks import dose_guidance
from tracker.esketamine import trd_shortfall_for_patient
from tracker.models import Clinician, DoseSchedule, Patient, Prescription
from tracker.portal.selectors import local_today
from tracker.regimens import RegimenKind
from tracker.services.prescriptions import change_dose, prescribe, reschedule

SERVICE_FORM_TEMPLATE = "admin/tracker/service_form.html"


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
        "warnings_display",
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

    @admin.display(description="Dose warnings")
    def warnings_display(self, obj: Prescription) -> str:
        """What the dose checks warned of when this version was saved (kept, never silently dropped)."""
        if not obj.dose_warnings:
            return "None"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((w,) for w in obj.dose_warnings)))

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
        """Every schedule version of this prescription: what, from when, until when, by whom and why."""
        schedules = obj.schedules.current().select_related("created_by").order_by("active_from", "start_date", "id")
        zone = obj.patient.zone

        def row(s: DoseSchedule) -> tuple[str, str, str]:
            since = s.active_from or s.created_at
            span = f"planned from {since.astimezone(zone):%d %b %Y %H:%M}"
            if s.active_until is not None:
                span += f" until {s.active_until.astimezone(zone):%d %b %Y %H:%M}"
            who = f", by {s.created_by}" if s.created_by else ""
            why = f": {s.change_reason}" if s.change_reason else ""
            return (f"{s}{f' ({s.get_phase_display().lower()})' if s.phase else ''}", f"{span} {zone.key}{who}", why)

        items = format_html_join("", "<li>{} — {}{}</li>", map(row, schedules))
        return format_html("<ul>{}</ul>", items) if items else "—"

    def get_readonly_fields(self, request: HttpRequest, obj: Prescription | None = None) -> list[str]:
        return [f for f in self.fields if f not in self.editable_fields]

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/change-dose/",
                self.admin_site.admin_view(self.change_dose_view),
                name="tracker_prescription_change_dose",
            ),
            path(
                "<path:object_id>/reschedule/",
                self.admin_site.admin_view(self.reschedule_view),
                name="tracker_prescription_reschedule",
            ),
            path(
                "prescribe/<int:patient_id>/",
                self.admin_site.admin_view(self.prescribe_view),
                name="tracker_prescription_prescribe",
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
        """Prescriptions ▸ Add: choose the patient, then prescribe on the patient's own form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        PrescriberAccess.acting_prescriber(request)
        form = PatientChoiceForm(request.GET or None, request=request)
        if request.GET and form.is_valid():
            return HttpResponseRedirect(
                reverse("admin:tracker_prescription_prescribe", args=[form.cleaned_data["patient"].pk])
            )
        return self._render_form(
            request, form, title="Prescribe: choose the patient", submit_label="Continue", get=True
        )

    def prescribe_view(self, request: HttpRequest, patient_id: int) -> HttpResponse:
        """Prescribe for one patient: any regimen, previewed in the patient's time before saving."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        patient = get_object_or_404(
            restrict_to_clinic(Patient.objects.current().filter(is_active=True), request), pk=patient_id
        )
        prescriber = PrescriberAccess.acting_prescriber(request)
        initial = {"start_date": local_today(patient), **request.GET.dict()}
        form = PrescribeForm(
            request.POST if request.method == "POST" else None,
            initial=initial,
            request=request,
            choose_prescriber=prescriber is None,
            patient=patient,
        )
        preview = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                specs = form.schedule_specs()
                if "preview" in request.POST:
                    preview = preview_doses(patient, data["drug"], specs, data["start_date"], data["end_date"])
                else:
                    rx = prescribe(
                        patient=patient,
                        drug=data["drug"],
                        dose=data["dose"],
                        start_date=data["start_date"],
                        end_date=data["end_date"],
                        route=data["route"] or None,
                        indication=data["indication"],
                        prescriber=prescriber or data["prescriber"],
                        schedules=specs,
                    )
            except ValidationError as exc:
                show_service_error(form, exc)
            else:
                if preview is None:
                    self.log_addition(request, rx, [{"added": {}}])
                    self.message_user(request, f"Prescribed {rx} for {rx.patient}.", messages.SUCCESS)
                    warn(request, list(getattr(rx, "dose_warnings", None) or []))
                    if rx.drug.in_clinic_only and (shortfall := trd_shortfall_for_patient(rx.patient, rx.start_date)):
                        # §3 action: a warning, not a block; the sweep also raises esk.trd_unconfirmed.
                        warn(request, [f"Treatment resistance not confirmed: {shortfall}"])
                    return HttpResponseRedirect(reverse("admin:tracker_prescription_change", args=[quote(rx.pk)]))
        return self._render_form(
            request,
            form,
            title=f"Prescribe for {patient.full_name}",
            submit_label="Prescribe",
            can_preview=True,
            preview=preview,
            **patient_context(patient),
        )

    def reschedule_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """New times or days for the same dose: a new schedule version; past planned doses stay."""
        rx = self.get_object(request, unquote(object_id))  # 404 outside the user's clinic
        if rx is None:
            raise Http404
        if not self.has_change_permission(request, rx):
            raise PermissionDenied
        prescriber = PrescriberAccess.acting_prescriber(request)
        current = list(rx.schedules.current().filter(active_until__isnull=True))
        form = RescheduleForm(
            request.POST if request.method == "POST" else None,
            initial=regimen_initial(current),
            request=request,
            choose_prescriber=prescriber is None,
        )
        preview = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            today = local_today(rx.patient)
            try:
                specs = form.regimen_value().specs(
                    drug=rx.drug, start_date=max(today, rx.start_date), end_date=rx.end_date
                )
                if "preview" in request.POST:
                    preview = preview_doses(rx.patient, rx.drug, specs, rx.start_date, rx.end_date)
                else:
                    reschedule(prescription=rx, schedules=specs, reason=data["reason"], changed_by=request.user)
            except ValidationError as exc:
                show_service_error(form, exc, {"change_reason": "reason"})
            else:
                if preview is None:
                    self.log_change(request, rx, f"Times or days changed: {data['reason']}")
                    self.message_user(request, "New dose times saved; past planned doses are kept.", messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:tracker_prescription_change", args=[quote(rx.pk)]))
        return self._render_form(
            request,
            form,
            title=f"Change times or days of {rx}",
            submit_label="Save new times",
            original=rx,
            can_preview=True,
            preview=preview,
            intro=f"Same dose ({rx.dose_text}). Now: {', '.join(str(s) for s in current) or 'no schedule'}.",
            **patient_context(rx.patient),
        )

    def change_dose_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A dose change as a new version of the prescription (service: change_dose)."""
        rx = self.get_object(request, unquote(object_id))  # 404 outside the user's clinic
        if rx is None:
            raise Http404
        if not self.has_change_permission(request, rx):
            raise PermissionDenied
        prescriber = PrescriberAccess.acting_prescriber(request)
        form = ChangeDoseForm(
            request.POST if request.method == "POST" else None,
            initial={"new_dose": rx.dose, "effective_date": local_today(rx.patient)},
            request=request,
            choose_prescriber=prescriber is None,
        )
        form.fields["new_dose"].help_text = f"{rx.drug}: {dose_guidance(rx.drug, rx.patient)}."
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
                warn(request, list(getattr(new, "dose_warnings", None) or []))
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
            **patient_context(rx.patient),
        )


class PatientChoiceForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none(), help_text="Prescribing continues on their page.")

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = restrict_to_clinic(Patient.objects.current().filter(is_active=True), request)


def patient_context(patient: Patient) -> dict[str, Any]:
    """The patient card of the prescribing pages: who this is for, and what they take now."""
    active = (
        Prescription.objects.current().filter(patient=patient, status=Prescription.Status.ACTIVE).select_related("drug")
    )
    return {
        "patient": patient,
        "patient_age": patient.age_on(local_today(patient)),
        "active_courses": [f"{rx.drug} {rx.dose_text}" for rx in active],
    }


def regimen_initial(schedules: list[DoseSchedule]) -> dict[str, Any]:
    """The form's starting values from the schedules running now (the first regular one)."""
    regular = next((s for s in schedules if s.kind != DoseSchedule.Kind.PRN), None)
    if regular is None:
        prn = schedules[0] if schedules else None
        return {"regimen": RegimenKind.PRN, "prn_max_doses_per_day": prn.prn_max_doses_per_day if prn else None}
    kind = {
        DoseSchedule.Kind.DAILY: RegimenKind.TIMES,
        DoseSchedule.Kind.WEEKDAYS: RegimenKind.WEEKDAYS,
        DoseSchedule.Kind.EVERY_N_DAYS: RegimenKind.EVERY_N_DAYS,
    }[regular.kind]
    return {
        "regimen": kind,
        "times_of_day": ", ".join(regular.times_of_day),
        "weekdays": regular.weekdays,
        "interval_days": regular.interval_days if regular.kind == DoseSchedule.Kind.EVERY_N_DAYS else None,
    }


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
