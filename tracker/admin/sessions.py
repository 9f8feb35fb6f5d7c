"""In-clinic ketamine/esketamine sessions: the clinician's record of each administration.

The form only translates input: every save is one call into ``tracker.services.sessions``
(``start_session`` on add, ``update_session`` on change). The form validates by running
that same call in a savepoint that is rolled back, so service messages appear beside
their fields and the real save cannot fail on them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import URLPattern
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from tracker import clinical
from tracker.admin import rems_export, session_start
from tracker.admin.routes import bound_routes
from tracker.admin.scoping import (
    EnteredInErrorFilter,
    ScopedHistoryAdmin,
    apply_validation_error,
    clinician_for,
    restrict_to_clinic,
)
from tracker.models import Clinician, InClinicSession, PlannedDose, Prescription
from tracker.models.sessions import bp_text
from tracker.services import sessions as session_service

ADD_FIELDS = (
    "prescription",
    "planned_dose",
    "administered_by",
    "care_setting",
    "preparation_confirmed",
    *session_service.PRE_DOSE_FIELDS,
)
EDITABLE_FIELDS = (
    *session_service.PRE_DOSE_FIELDS,
    "bp_decision",
    "bp_decision_reason",
    *session_service.DOSING_FIELDS,
    *session_service.MONITORING_FIELDS,
    "discharge_at",
    "rems_form_submitted_at",
)


# Dosing fields that belong to one route only (§1 devices; §2 mg/kg over minutes).
ROUTE_FIELDS = {"nasal": {"devices"}, "iv": {"dose_mg_per_kg", "weight_kg", "infusion_minutes"}}
ROUTE_ONLY_FIELDS = {"devices", "dose_mg_per_kg", "weight_kg", "infusion_minutes"}


def concomitant_text(patient: Any) -> str:
    """The patient's medicines active today that the REMS form asks about (§1), for the nurse to confirm."""
    from tracker.admin.rems_export import CONCOMITANT_LABELS, concomitant

    today = timezone.now().astimezone(patient.zone).date()
    prescriptions = Prescription.objects.current().filter(patient=patient).select_related("drug")
    found = concomitant(prescriptions, today)
    named = [f"{CONCOMITANT_LABELS[key]}: {', '.join(drugs)}" for key, drugs in found.items() if drugs]
    return "; ".join(named) or "none of the classes the REMS form asks about"


def _without(fields: list, hidden: set[str]) -> list:
    """A fieldset's field list without ``hidden`` (rows given as tuples keep their other fields)."""
    kept = []
    for field in fields:
        if isinstance(field, tuple):
            row = tuple(f for f in field if f not in hidden)
            if row:
                kept.append(row if len(row) > 1 else row[0])
        elif field not in hidden:
            kept.append(field)
    return kept


class SessionForm(forms.ModelForm):
    """Checks a save by running the service in a savepoint that is rolled back."""

    request: HttpRequest  # set by SessionAdmin.get_form
    addendum_reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        label="Reason for the addendum",
        help_text="Only for a signed-off session: why it is changed (kept with your name and the time).",
    )

    class Meta:
        model = InClinicSession
        fields = [*ADD_FIELDS, *EDITABLE_FIELDS]

    def acting_clinician(self) -> Clinician:
        return clinician_for(self.request) or self.instance.administered_by or self.cleaned_data["administered_by"]

    def run_service(self) -> session_service.SessionResult:
        data = self.cleaned_data
        if self.instance.pk is None:
            return session_service.start_session(
                prescription=data["prescription"],
                administered_by=data["administered_by"],
                planned_dose=data.get("planned_dose"),
                care_setting=data.get("care_setting") or None,
                preparation_confirmed=data.get("preparation_confirmed"),
                bp_before_systolic=data.get("bp_before_systolic"),
                bp_before_diastolic=data.get("bp_before_diastolic"),
                bp_before_at=data.get("bp_before_at"),
            )
        values = {name: data[name] for name in self.changed_data if name in EDITABLE_FIELDS}
        return session_service.update_session(
            session=self.instance,
            values=values,
            by=self.acting_clinician(),
            recorded_by=self.request.user,
            addendum_reason=data.get("addendum_reason") or "",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            with transaction.atomic():
                self.run_service()
                transaction.set_rollback(True)  # a dry run: the real save is in save_model
        except ValidationError as exc:
            apply_validation_error(self, exc)
        return cleaned

    def _post_clean(self) -> None:
        # The service validated the session (and the model's clean() runs inside it); the
        # instance here is only the changelist's copy, so skip the form's second full_clean.
        pass


@admin.register(InClinicSession)
class InClinicSessionAdmin(ScopedHistoryAdmin):
    form = SessionForm
    clinic_lookup = "patient__clinic"
    list_display = [
        "created_at",
        "patient",
        "drug",
        "status",
        "dose",
        "bp_before",
        "observation_minutes",
        "administered_by",
    ]
    list_filter = ["status", "route", "bp_decision", EnteredInErrorFilter]
    list_select_related = ["patient", "prescription__drug", "administered_by__user"]
    search_fields = ["patient__given_name", "patient__family_name", "=patient__record_number", "lot_number"]
    date_hierarchy = "created_at"
    add_fieldsets = [
        (
            None,
            {"fields": ["prescription", "planned_dose", "administered_by", "care_setting", "preparation_confirmed"]},
        ),
        ("Pre-dose", {"fields": list(session_service.PRE_DOSE_FIELDS)}),
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "patient",
                    "prescription",
                    "planned_dose",
                    "administered_by",
                    "care_setting",
                    "preparation_confirmed",
                    "status",
                    "dose_event",
                ]
            },
        ),
        (
            "Pre-dose",
            {
                "fields": [
                    "bp_warning",
                    ("bp_before_systolic", "bp_before_diastolic"),
                    "bp_before_at",
                    "bp_decision",
                    "bp_decision_reason",
                    ("bp_decision_by", "bp_decision_at"),
                ]
            },
        ),
        (
            "Dosing",
            {
                "fields": [
                    "devices",
                    ("dose_mg_per_kg", "weight_kg"),
                    "infusion_minutes",
                    "first_device_at",
                    "lot_number",
                ]
            },
        ),
        (
            "Monitoring",
            {
                "fields": [
                    ("bp_40min_systolic", "bp_40min_diastolic"),
                    "bp_40min_at",
                    "spo2_lowest",
                    ("moaas_lowest", "cadss_total"),
                    "respiratory_depression",
                    "observation_started_at",
                    "adverse_events",
                ]
            },
        ),
        (
            "Discharge",
            {
                "fields": [
                    ("bp_discharge_systolic", "bp_discharge_diastolic"),
                    "moaas_at_discharge",
                    "dissociation_resolved",
                    "no_driving_acknowledged",
                    "discharge_at",
                    "observation_minutes",
                ]
            },
        ),
        ("REMS", {"fields": ["rems_form_submitted_at"]}),
        ("Sign-off", {"fields": ["signed_off", "addenda_list", "addendum_reason"]}),
        (
            "Record",
            {
                "classes": ["collapse"],
                "fields": [
                    "created_at",
                    "updated_at",
                    "entered_in_error_at",
                    "entered_in_error_by",
                    "entered_in_error_reason",
                ],
            },
        ),
    ]
    change_readonly = (
        "patient",
        "care_setting",
        "preparation_confirmed",
        "prescription",
        "planned_dose",
        "administered_by",
        "status",
        "dose_event",
        "bp_warning",
        "bp_decision_by",
        "bp_decision_at",
        "weight_kg",
        "observation_minutes",
        "signed_off",
        "addenda_list",
        "created_at",
        "updated_at",
        "entered_in_error_at",
        "entered_in_error_by",
        "entered_in_error_reason",
    )

    @admin.display(description="Signed off")
    def signed_off(self, obj: InClinicSession) -> str:
        if obj.signed_off_at is None:
            gaps = session_service.sign_off_gaps(obj)
            return "Not yet. " + ("Still missing: " + "; ".join(gaps) + "." if gaps else "Ready to sign off.")
        local = obj.signed_off_at.astimezone(timezone.get_current_timezone())
        return f"{local:%d %b %Y %H:%M} {local.tzname()} by {obj.signed_off_by}"

    @admin.display(description="Addenda")
    def addenda_list(self, obj: InClinicSession) -> str:
        items = [
            (
                f"{(t := a.created_at.astimezone(timezone.get_current_timezone())):%d %b %Y %H:%M} {t.tzname()}",
                a.recorded_by or "—",
                ", ".join(a.changed_fields),
                a.reason,
            )
            for a in obj.addenda.select_related("recorded_by")
        ]
        if not items:
            return "None"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{} by {}: {} — {}</li>", items))

    @admin.display(description="Drug", ordering="prescription__drug__name")
    def drug(self, obj: InClinicSession) -> str:
        return str(obj.prescription.drug)

    @admin.display(description="Dose")
    def dose(self, obj: InClinicSession) -> str:
        return obj.dose_display

    @admin.display(description="BP before")
    def bp_before(self, obj: InClinicSession) -> str:
        return bp_text(obj.bp_before_systolic, obj.bp_before_diastolic)

    @admin.display(description="Observation (min)")
    def observation_minutes(self, obj: InClinicSession) -> str:
        """§1 observation_clock: first device to discharge; computed, never typed."""
        minutes = obj.observation_minutes
        return "—" if minutes is None else str(minutes)

    @admin.display(description="Blood pressure warning")
    def bp_warning(self, obj: InClinicSession) -> str:
        warning = session_service.bp_warning(obj)
        if warning is None:
            return "—"
        if obj.bp_decision:
            return f"Above the threshold; decision recorded: {obj.get_bp_decision_display()}."
        return format_html('<p class="errornote" role="alert"><strong>{}</strong></p>', warning)

    def get_queryset(self, request: HttpRequest) -> QuerySet[InClinicSession]:
        return super().get_queryset(request).select_related("patient", "prescription__drug")

    def get_fieldsets(self, request: HttpRequest, obj: InClinicSession | None = None) -> list:
        """Only the fields of the session's route: devices for nasal esketamine, mg/kg and minutes for IV."""
        if obj is None:
            return self.add_fieldsets
        hidden = ROUTE_ONLY_FIELDS - ROUTE_FIELDS.get(obj.route, ROUTE_ONLY_FIELDS)
        return [(name, {**options, "fields": _without(options["fields"], hidden)}) for name, options in self.fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj: InClinicSession | None = None) -> list[str]:
        if obj is None:
            return []
        if obj.is_entered_in_error:
            return [*self.change_readonly, *EDITABLE_FIELDS]
        return list(self.change_readonly)

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        return session_start.local_datetime_field(field) if field is not None else None

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "prescription":
            kwargs["form_class"] = session_start.PrescriptionChoice
        elif db_field.name == "planned_dose":
            kwargs["form_class"] = session_start.PlannedSessionChoice
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is None:
            return field
        if db_field.name == "prescription":
            field.queryset = (
                field.queryset.filter(
                    drug__in_clinic_only=True, status=Prescription.Status.ACTIVE, entered_in_error_at__isnull=True
                )
                .select_related("drug", "patient")
                .order_by("patient__family_name", "patient__given_name", "id")
            )
        elif db_field.name == "planned_dose":
            # Open sessions from a week back to a week ahead: the ones a nurse may be recording.
            now = timezone.now()
            field.queryset = (
                field.queryset.filter(
                    prescription__drug__in_clinic_only=True,
                    status__in=[PlannedDose.Status.PENDING, PlannedDose.Status.MISSED],
                    due_at__range=(now - dt.timedelta(days=7), now + dt.timedelta(days=7)),
                )
                .select_related("prescription__drug", "patient")
                .order_by("due_at")
            )
        elif db_field.name == "administered_by":
            field.queryset = field.queryset.filter(is_active=True).select_related("user")
            if (membership := clinician_for(request)) is not None:
                field.initial = membership.pk
        return field

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """From "Start session": the planned session, its prescription and the nurse, pre-filled."""
        initial = super().get_changeform_initial_data(request)
        planned_id = str(initial.pop("planned_dose", ""))
        initial.pop("prescription", None)  # only ever taken from a planned session of this clinic
        if planned_id.isdigit():
            planned = restrict_to_clinic(PlannedDose.objects.all(), request).filter(pk=int(planned_id)).first()
            if planned is not None:
                initial.update(
                    planned_dose=planned.pk,
                    prescription=planned.prescription_id,
                    # What carries over from the last session; the nurse confirms it.
                    care_setting=session_service.last_care_setting(planned.patient),
                )
        if (membership := clinician_for(request)) is not None:
            initial.setdefault("administered_by", membership.pk)
        return initial

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False, **kwargs: Any
    ) -> Any:
        """The patient, on the page: from the session, or the planned session being started."""
        obj = kwargs.get("obj")
        patient = obj.patient if obj is not None else None
        if patient is None:
            initial = context["adminform"].form.initial
            planned = PlannedDose.objects.filter(pk=initial.get("planned_dose") or 0).select_related(
                "patient", "prescription__drug"
            )
            found = restrict_to_clinic(planned, request).first()
            if found is not None:
                patient = found.patient
                context["session_planned"] = session_start.local_text(found.due_at, patient.zone)
                context["session_prescription"] = f"{found.prescription.drug} {found.prescription.dose_text}"
        elif obj is not None:
            context["session_prescription"] = f"{obj.prescription.drug} {obj.prescription.dose_text}"
        if patient is not None:
            context.update(
                session_patient=patient,
                session_patient_age=patient.age_on(timezone.now().astimezone(patient.zone).date()),
                session_concomitant=concomitant_text(patient),
            )
        if obj is not None and obj.devices is None and obj.route == "nasal" and not obj.is_entered_in_error:
            # What carries over from the last session (§1 devices); the nurse confirms it by saving.
            last = (
                InClinicSession.objects.current()
                .filter(patient=obj.patient, devices__isnull=False)
                .exclude(pk=obj.pk)
                .order_by("-created_at")
                .values_list("devices", flat=True)
                .first()
            )
            form = context["adminform"].form
            if last is not None and "devices" in form.fields and not form.is_bound:
                form.initial["devices"] = last
                devices = form.fields["devices"]
                devices.help_text = (
                    f"{last} at the last session, carried over: confirm or change it. {devices.help_text}"
                )
        context["time_zone_name"] = timezone.get_current_timezone_name()
        # For the "Now" buttons: the clinic's wall clock at render time (the browser's may differ).
        context["clinic_now"] = timezone.localtime().strftime(session_start.ISO_MINUTES)
        context["bp_threshold_systolic"] = clinical.get(
            "BP_THRESHOLD_SYSTOLIC"
        )  # §1 bp_threshold, for the live warning
        context["bp_threshold_diastolic"] = clinical.get("BP_THRESHOLD_DIASTOLIC")
        return super().render_change_form(request, context, add, change, **kwargs)

    def get_urls(self) -> list[URLPattern]:
        return [
            *bound_routes(
                self,
                "session_admin",
                [
                    ("today/", session_start.today_view, "tracker_inclinicsession_today"),
                    ("floor/", session_start.floor_view, "tracker_inclinicsession_floor"),
                    ("rems-forms/", rems_export.rems_export_view, "tracker_inclinicsession_rems_export"),
                    ("<int:object_id>/rems-form/", rems_export.rems_form_view, "tracker_inclinicsession_rems_form"),
                ],
            ),
            *super().get_urls(),
        ]

    def get_form(self, request: HttpRequest, obj: InClinicSession | None = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        return type("BoundSessionForm", (form_class,), {"request": request})

    def save_model(self, request: HttpRequest, obj: InClinicSession, form: SessionForm, change: bool) -> None:
        """One service call; the form already ran it as a dry run, so its messages are shown.

        "Save and sign off" then signs the record off, or says what is still missing.
        """
        result = form.run_service()
        obj.__dict__.update(result.session.__dict__)  # the saved row, for the admin's log and redirect
        for warning in result.warnings:
            self.message_user(request, warning, messages.WARNING)
        if change and "_signoff" in request.POST:
            try:
                signed = session_service.sign_off_session(session=obj, by=form.acting_clinician())
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                obj.__dict__.update(signed.__dict__)
                self.message_user(request, "Session signed off: from now on it changes only by an addendum.")

    def response_change(self, request: HttpRequest, obj: InClinicSession) -> Any:
        if "_signoff" in request.POST:
            return HttpResponseRedirect(request.path)  # stay on the session: signed off, or what is missing
        return super().response_change(request, obj)
