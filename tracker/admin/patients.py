"""Patients: the clinician's list, and each patient's course on one page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from tracker.admin import entries, exports, password_reset
from tracker.admin.access import RECENT_ACCESSES, RecentAccessFormSet, is_manager
from tracker.admin.caseload import caseload_view
from tracker.admin.prescribing import can_prescribe
from tracker.admin.routes import bound_routes
from tracker.admin.scoping import ClinicianListFilter, EnteredInErrorFilter, ScopedHistoryAdmin, clinician_for
from tracker.admin.timeline import timeline_view
from tracker.models import Assessment, DoseEvent, Flag, Patient, PatientAccess, Prescription, WeightMeasurement
from tracker.models.measurements import validate_weight_kg
from tracker.services.access import record_access
from tracker.services.measurements import record_weight
from tracker.services.patients import change_timezone, discharge

RECENT_DOSE_EVENTS = 20


class ReadOnlyInline(admin.TabularInline):
    """A summary table on the patient page; changes go through each record's own page."""

    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return list(self.fields or [])


class PrescriptionInline(ReadOnlyInline):
    model = Prescription
    verbose_name_plural = "Prescriptions (all versions)"
    fields = ["drug", "dose", "dose_unit", "route", "start_date", "end_date", "status", "prescriber"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Prescription]:
        return super().get_queryset(request).select_related("drug", "prescriber__user")


class RecentFormSet(BaseInlineFormSet):
    """Only the newest rows: a long course has hundreds of dose events."""

    def get_queryset(self) -> QuerySet:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset()[:RECENT_DOSE_EVENTS]
        return self._recent


class RecentDoseEventInline(ReadOnlyInline):
    model = DoseEvent
    formset = RecentFormSet
    verbose_name_plural = f"Recent dose events (last {RECENT_DOSE_EVENTS})"
    fields = ["occurred_at", "prescription", "outcome", "timing", "location", "reporter", "entered_in_error_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DoseEvent]:
        return super().get_queryset(request).select_related("prescription__drug").order_by("-occurred_at", "-id")


class AssessmentInline(ReadOnlyInline):
    model = Assessment
    fields = ["instrument", "total", "band", "completed_at", "source", "entered_in_error_at"]


class WeightInline(ReadOnlyInline):
    model = WeightMeasurement
    formset = RecentFormSet
    verbose_name_plural = f"Weights (last {RECENT_DOSE_EVENTS})"
    fields = ["measured_at", "weight_kg", "recorded_by", "note", "entered_in_error_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WeightMeasurement]:
        return super().get_queryset(request).select_related("recorded_by").order_by("-measured_at", "-id")


class OpenFlagInline(ReadOnlyInline):
    model = Flag
    verbose_name_plural = "Unresolved flags"
    fields = ["severity", "kind", "status", "raised_at", "message", "assigned_to"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return (
            super()
            .get_queryset(request)
            .exclude(status=Flag.Status.RESOLVED)
            .select_related("patient", "assigned_to__user")
        )


class PatientAccessInline(ReadOnlyInline):
    """'Who opened this record' (the access log), for managers only (see get_inlines)."""

    model = PatientAccess
    formset = RecentAccessFormSet
    verbose_name_plural = f"Who opened this record (last {RECENT_ACCESSES})"
    fields = ["at", "user", "surface", "address"]
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[PatientAccess]:
        return super().get_queryset(request).select_related("user")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_manager(request)


class PatientForm(forms.ModelForm):
    """Checks the per-clinic record number itself when the clinic field is not on the form.

    Django skips a unique constraint whose fields are not all on the form, which would
    turn a duplicate record number into a database error instead of a message.
    """

    class Meta:
        model = Patient
        fields = [
            "clinic",
            "record_number",
            "given_name",
            "family_name",
            "date_of_birth",
            "gender",
            "timezone",
            "weight_kg",
            "rems_enrolled_on",
            "email",
            "language",
            "responsible_clinician",
            "is_active",
        ]

    # Both have a default on the model; a form posted without them (an older client, a script)
    # keeps the record's value (a new record's default) instead of failing on a missing field.
    OPTIONAL_WITH_DEFAULT = ("gender", "language")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.OPTIONAL_WITH_DEFAULT:
            if name in self.fields:
                self.fields[name].required = False

    def clean_gender(self) -> str:
        return self.cleaned_data.get("gender") or self.instance.gender

    def clean_language(self) -> str:
        return self.cleaned_data.get("language") or self.instance.language

    def clean_weight_kg(self) -> Any:
        # A new patient's weight is recorded as their first measurement, so it must fit its range
        # (0 and below are left to the model's own message).
        weight = self.cleaned_data.get("weight_kg")
        if weight is not None and weight > 0:
            validate_weight_kg(weight)
        return weight

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        number = cleaned.get("record_number")
        if "clinic" not in self.fields and number and self.instance.clinic_id:
            taken = Patient.objects.filter(clinic_id=self.instance.clinic_id, record_number=number)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("record_number", "Another patient of this clinic already has this record number.")
        return cleaned


@admin.register(Patient)
class PatientAdmin(ScopedHistoryAdmin):
    form = PatientForm
    clinic_lookup = "clinic"
    list_display = [
        "family_name",
        "given_name",
        "record_number",
        "responsible_clinician",
        "timezone",
        "is_active",
        "unresolved_flags",
    ]
    list_display_links = ["family_name", "given_name"]
    list_filter = [
        "is_active",
        "gender",
        ("responsible_clinician", ClinicianListFilter),
        "timezone",
        EnteredInErrorFilter,
    ]
    list_select_related = ["responsible_clinician__user"]
    search_fields = ["given_name", "family_name", "^record_number"]
    readonly_fields = [
        "created_at",
        "updated_at",
        "entered_in_error_at",
        "entered_in_error_by",
        "entered_in_error_reason",
    ]
    inlines = [OpenFlagInline, PrescriptionInline, RecentDoseEventInline, AssessmentInline, WeightInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Patient]:
        # A correlated count in the list query instead of a query per row; a subquery rather
        # than a join + GROUP BY, so the paginator's COUNT(*) stays a plain count.
        unresolved = (
            Flag.objects.filter(patient=OuterRef("pk"))
            .exclude(status=Flag.Status.RESOLVED)
            .order_by()
            .values("patient")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(unresolved_flag_count=Coalesce(Subquery(unresolved), 0))

    @admin.display(description="Unresolved flags", ordering="unresolved_flag_count")
    def unresolved_flags(self, obj: Patient) -> int:
        return obj.unresolved_flag_count

    def get_inlines(self, request: HttpRequest, obj: Patient | None) -> list[type[admin.options.InlineModelAdmin]]:
        # A new patient has no course yet; managers also see who opened the record.
        if obj is None:
            return []
        return [*self.inlines, PatientAccessInline] if is_manager(request) else self.inlines

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        shown = getattr(response, "context_data", None) or {}
        if request.method == "GET" and response.status_code == 200 and shown.get("original") is not None:
            record_access(request, shown["original"], PatientAccess.Surface.PATIENT_PAGE)  # the access log
        return response

    def get_readonly_fields(self, request: HttpRequest, obj: Patient | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.insert(0, "clinic")  # a clinician's patients are always in their own clinic
        if obj is not None:
            fields.append("weight_kg")  # the latest measurement: changed by "Add weight", with its history
        return fields

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Patient | None = None,
    ) -> HttpResponse:
        context["can_add_weight"] = obj is not None and request.user.has_perm("tracker.add_weightmeasurement")
        context["can_prescribe"] = obj is not None and obj.is_active and can_prescribe(request)
        context["can_record_score"] = obj is not None and request.user.has_perm("tracker.add_assessment")
        context["can_record_dose"] = obj is not None and request.user.has_perm("tracker.add_doseevent")
        context["can_issue_reset_link"] = obj is not None and obj.user_id and self.has_change_permission(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_form(self, request: HttpRequest, obj: Patient | None = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        membership = clinician_for(request)
        if obj is not None or request.user.is_superuser or membership is None:
            return form_class
        clinic = membership.clinic

        class NewPatientForm(form_class):  # type: ignore[valid-type, misc]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                # Set before validation, so clean() checks the clinician and record number
                # against the clinic the patient will belong to.
                self.instance.clinic = clinic

        return NewPatientForm

    def save_model(self, request: HttpRequest, obj: Patient, form: forms.ModelForm, change: bool) -> None:
        if not change and not request.user.is_superuser:
            obj.clinic = clinician_for(request).clinic  # type: ignore[union-attr]
        if not change and obj.weight_kg is not None:
            # A weight given with the new record is its first measurement (the baseline on record).
            super().save_model(request, obj, form, change)
            record_weight(
                patient=obj,
                weight_kg=obj.weight_kg,
                recorded_by=request.user,
                note="Given with the new patient record.",
            )
            return
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Discharge: planned doses not yet due are withdrawn, so they raise no flags.
            super().save_model(request, obj, form, change)
            discharge(patient=obj)
            return
        if change and "timezone" in form.changed_data:
            # A move to another zone re-plans future doses on the new wall clock; past ones stay.
            new_timezone = obj.timezone
            obj.timezone = form.initial["timezone"]
            super().save_model(request, obj, form, change)
            change_timezone(patient=obj, new_timezone=new_timezone)
            return
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list[URLPattern]:
        """The course timeline, the CSV exports and clinician entry; each view is clinic-scoped (404 outside)."""
        custom = bound_routes(
            self,
            "patient_admin",
            [
                ("<int:object_id>/timeline/", timeline_view, "tracker_patient_timeline"),
                ("<int:object_id>/export.csv", exports.course_export_view, "tracker_patient_export"),
                ("export/clinic.csv", exports.clinic_export_view, "tracker_patient_clinic_export"),
                ("caseload/", caseload_view, "tracker_patient_caseload"),
                ("<int:object_id>/record-score/", entries.score_choice_view, "tracker_patient_record_score_choice"),
                (
                    "<int:object_id>/record-score/<slug:instrument>/",
                    entries.score_view,
                    "tracker_patient_record_score",
                ),
                ("<int:object_id>/record-dose/", entries.dose_view, "tracker_patient_record_dose"),
                (
                    "<int:object_id>/password-reset-link/",
                    password_reset.reset_link_view,
                    "tracker_patient_password_reset_link",
                ),
            ],
        )
        return custom + super().get_urls()
