"""Serializers: explicit fields, read shapes for responses and input shapes for the services.

Input serializers only check the shape of a request (types, ranges, the caller's reach);
clinical rules stay in ``tracker.services``, whose refusals come back through
``tracker.api.errors.call_service`` in the same 400 shape.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tracker.api.fields import CourseDateField, CourseDateTimeField, ScopedPrimaryKeyField
from tracker.models import (
    Assessment,
    DoseEvent,
    DoseSchedule,
    DoseUnit,
    Drug,
    Flag,
    FlagFact,
    InClinicSession,
    Instrument,
    Patient,
    PlannedDose,
    Prescription,
    Route,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.services.prescriptions import ScheduleSpec

ENTERED_IN_ERROR_FIELDS = ("entered_in_error_at", "entered_in_error_reason")

# --- Read shapes ---------------------------------------------------------------------------


class PatientSerializer(serializers.ModelSerializer):
    # Plain text, not format "email": a patient without one has "" (which is no email address).
    email = serializers.CharField(read_only=True, help_text="The patient's email address, or blank.")

    class Meta:
        model = Patient
        fields = (
            "id",
            "clinic",
            "record_number",
            "given_name",
            "family_name",
            "date_of_birth",
            "timezone",
            "weight_kg",
            "email",
            "responsible_clinician",
            "is_active",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class DrugSerializer(serializers.ModelSerializer):
    class Meta:
        model = Drug
        fields = (
            "id",
            "name",
            "display_name",
            "drug_class",
            "routes",
            "atc_code",
            "rxnorm_code",
            "dose_unit",
            "dose_basis",
            "usual_min",
            "usual_max",
            "maximum",
            "in_clinic_only",
        )
        read_only_fields = fields


class DoseScheduleSerializer(serializers.ModelSerializer):
    times_of_day = serializers.ListField(child=serializers.CharField(), read_only=True)
    weekdays = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = DoseSchedule
        fields = (
            "id",
            "prescription",
            "kind",
            "times_of_day",
            "weekdays",
            "interval_days",
            "phase",
            "prn_max_doses_per_day",
            "start_date",
            "end_date",
            "active_from",
            "active_until",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class PrescriptionSerializer(serializers.ModelSerializer):
    drug_name = serializers.CharField(source="drug.name", read_only=True)
    replaced_by = serializers.SerializerMethodField(help_text="The later version made by a dose change, if any.")
    schedules = DoseScheduleSerializer(many=True, read_only=True)
    dose_warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Warnings the dose checks gave when this version was prescribed (clinical-reference §1, §2, §6); "
        "the prescription was saved anyway.",
    )

    class Meta:
        model = Prescription
        fields = (
            "id",
            "patient",
            "drug",
            "drug_name",
            "dose",
            "dose_unit",
            "route",
            "start_date",
            "end_date",
            "prescriber",
            "status",
            "indication",
            "change_reason",
            "replaces",
            "replaced_by",
            "clinician_marked_failed",
            "dose_warnings",
            "schedules",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields

    def get_replaced_by(self, rx: Prescription) -> int | None:
        # Reverse one-to-one, loaded by select_related; a missing one raises (an AttributeError).
        newer = getattr(rx, "replaced_by", None)
        return newer.pk if newer is not None else None


class PlannedDoseSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlannedDose
        fields = ("id", "patient", "prescription", "schedule", "due_at", "deadline", "local_date", "status")
        read_only_fields = fields


class DoseEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = DoseEvent
        fields = (
            "id",
            "patient",
            "prescription",
            "planned_dose",
            "outcome",
            "timing",
            "occurred_at",
            "local_date",
            "amount",
            "location",
            "skip_reason",
            "note",
            "reporter",
            "outside_clinic_report",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class AssessmentSerializer(serializers.ModelSerializer):
    answers = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = Assessment
        fields = (
            "id",
            "patient",
            "instrument",
            "answers",
            "total",
            "band",
            "completed_at",
            "source",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class SideEffectReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = SideEffectReport
        fields = (
            "id",
            "patient",
            "prescription",
            "effect",
            "description",
            "severity",
            "onset_date",
            "reported_at",
            "checkin",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class InClinicSessionSerializer(serializers.ModelSerializer):
    """A ketamine/esketamine session with its monitoring; recorded in the clinician admin."""

    class Meta:
        model = InClinicSession
        fields = (
            "id",
            "patient",
            "prescription",
            "planned_dose",
            "dose_event",
            "administered_by",
            "status",
            "route",
            "bp_before_systolic",
            "bp_before_diastolic",
            "bp_before_at",
            "bp_decision",
            "bp_decision_reason",
            "bp_decision_at",
            "devices",
            "dose_mg_per_kg",
            "weight_kg",
            "infusion_minutes",
            "first_device_at",
            "lot_number",
            "bp_40min_systolic",
            "bp_40min_diastolic",
            "bp_40min_at",
            "spo2_lowest",
            "moaas_lowest",
            "cadss_total",
            "respiratory_depression",
            "observation_started_at",
            "adverse_events",
            "bp_discharge_systolic",
            "bp_discharge_diastolic",
            "moaas_at_discharge",
            "dissociation_resolved",
            "no_driving_acknowledged",
            "discharge_at",
            "rems_form_submitted_at",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class WeightMeasurementSerializer(serializers.ModelSerializer):
    class Meta:
        model = WeightMeasurement
        fields = ("id", "patient", "measured_at", "weight_kg", "note", "created_at", *ENTERED_IN_ERROR_FIELDS)
        read_only_fields = fields


class FlagFactSerializer(serializers.ModelSerializer):
    class Meta:
        model = FlagFact
        fields = ("message", "occurred_at", "answered_at", "answer_note")
        read_only_fields = fields


class FlagSerializer(serializers.ModelSerializer):
    """A problem and the facts behind it (each missed dose, worse score or missed session)."""

    facts = FlagFactSerializer(many=True, read_only=True)

    class Meta:
        model = Flag
        fields = (
            "id",
            "patient",
            "kind",
            "severity",
            "status",
            "title",
            "message",
            "action",
            "raised_at",
            "last_occurred_at",
            "occurrences",
            "streak",
            "escalated_at",
            "facts",
            "assigned_to",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "resolution_note",
        )
        read_only_fields = fields


# --- Input shapes ----------------------------------------------------------------------------


class ScheduleSpecSerializer(serializers.Serializer):
    """When doses are due, in the patient's local time (see DoseSchedule)."""

    kind = serializers.ChoiceField(choices=DoseSchedule.Kind.choices, default=DoseSchedule.Kind.DAILY)
    times_of_day = serializers.ListField(
        child=serializers.CharField(max_length=5), max_length=4, default=list, help_text='Local "HH:MM" times.'
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), max_length=7, default=list
    )
    interval_days = serializers.IntegerField(min_value=1, max_value=365, default=1)
    phase = serializers.ChoiceField(choices=DoseSchedule.Phase.choices, default="")
    prn_max_doses_per_day = serializers.IntegerField(min_value=1, max_value=24, required=False, allow_null=True)
    start_date = CourseDateField(required=False, allow_null=True)
    end_date = CourseDateField(required=False, allow_null=True)


def schedule_specs(items: list[dict[str, Any]] | None) -> list[ScheduleSpec] | None:
    return None if items is None else [ScheduleSpec(**item) for item in items]


DOSE = {"max_digits": 8, "decimal_places": 2, "min_value": 0}


class PrescribeSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    drug = serializers.PrimaryKeyRelatedField(queryset=Drug.objects.all())
    dose = serializers.DecimalField(**DOSE)
    dose_unit = serializers.ChoiceField(
        choices=DoseUnit.choices,
        required=False,
        allow_null=True,
        help_text="The dose's unit; the drug's own unit if omitted. A unit that does not fit the drug is refused.",
    )
    route = serializers.ChoiceField(choices=Route.choices, required=False)
    start_date = CourseDateField()
    end_date = CourseDateField(required=False, allow_null=True)
    indication = serializers.CharField(max_length=200, required=False, default="")
    schedules = ScheduleSpecSerializer(many=True, min_length=1, max_length=4)


class ChangeDoseSerializer(serializers.Serializer):
    new_dose = serializers.DecimalField(**DOSE)
    effective_date = CourseDateField()
    reason = serializers.CharField(help_text="Why the dose is changing (titration, taper, side effects...).")
    schedules = ScheduleSpecSerializer(
        many=True, min_length=1, max_length=4, required=False, help_text="New dose times; the old ones if omitted."
    )


class StopSerializer(serializers.Serializer):
    end_date = CourseDateField()
    reason = serializers.CharField()


class DoseEventCreateSerializer(serializers.Serializer):
    prescription = ScopedPrimaryKeyField(queryset=Prescription.objects.select_related("drug", "patient"))
    occurred_at = CourseDateTimeField()
    outcome = serializers.ChoiceField(choices=DoseEvent.Outcome.choices, default=DoseEvent.Outcome.TAKEN)
    planned_dose = ScopedPrimaryKeyField(queryset=PlannedDose.objects.all(), required=False, allow_null=True)
    skip_reason = serializers.CharField(max_length=200, required=False, default="")
    location = serializers.ChoiceField(choices=DoseEvent.Location.choices, default=DoseEvent.Location.HOME)
    amount = serializers.DecimalField(**DOSE, required=False, allow_null=True)
    note = serializers.CharField(max_length=2000, required=False, default="")


class OutsideClinicReportSerializer(serializers.Serializer):
    prescription = ScopedPrimaryKeyField(queryset=Prescription.objects.select_related("drug", "patient"))
    occurred_at = CourseDateTimeField()
    note = serializers.CharField(max_length=2000, required=False, default="")


class AssessmentCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    instrument = serializers.ChoiceField(choices=Instrument.choices)
    answers = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=100), max_length=50)
    completed_at = CourseDateTimeField(required=False)
    source = serializers.ChoiceField(
        choices=Assessment.Source.choices,
        required=False,
        help_text="Clinicians only (default clinician); a patient's own answers are always patient-reported.",
    )


class SideEffectCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    prescription = ScopedPrimaryKeyField(queryset=Prescription.objects.all(), required=False, allow_null=True)
    effect = serializers.CharField(max_length=40, help_text="A code from the side-effect catalogue, or 'other'.")
    description = serializers.CharField(max_length=2000, required=False, default="")
    severity = serializers.ChoiceField(choices=SideEffectReport.Severity.choices)
    onset_date = CourseDateField(required=False, allow_null=True)


class WeightCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, help_text="In kilograms.")
    measured_at = CourseDateTimeField(required=False, help_text="When the patient was weighed; now if omitted.")
    note = serializers.CharField(max_length=2000, required=False, default="")


class EnteredInErrorSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the record was entered in error; kept in its history.")


class ResolveFlagSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, default="", help_text="Required for urgent and critical flags.")
