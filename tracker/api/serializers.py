"""Serializers: explicit fields, read shapes for responses and input shapes for the services.

Input serializers only check the shape of a request (types, ranges, the caller's reach);
clinical rules stay in ``tracker.services``, whose refusals come back through
``tracker.api.errors.call_service`` in the same 400 shape. An optional text field takes ""
as well as no value (both mean "none"), so a generated client that sends the documented
default "" is not refused.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tracker import scales
from tracker.api.fields import CourseDateField, CourseDateTimeField, ScopedPrimaryKeyField
from tracker.api.permissions import actor_for
from tracker.fhir_codes import exported_rxnorm_code
from tracker.models import (
    Assessment,
    ClinicalMeasurement,
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
    SessionAddendum,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.models.clinics import Clinician
from tracker.regimens import Regimen, RegimenKind
from tracker.services.prescriptions import ScheduleSpec
from tracker.services.sessions import bp_warning

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
            "gender",
            "language",
            "timezone",
            "weight_kg",
            "email",
            "responsible_clinician",
            "is_active",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields


class DrugSerializer(serializers.ModelSerializer):
    rxnorm_code = serializers.SerializerMethodField(
        help_text="The RxNorm RxCUI the FHIR export sends for this drug: a code checked against a cited "
        "public source (docs/fhir.md), or the one a clinic entered for a drug it added; blank when none "
        "is verified."
    )

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

    def get_rxnorm_code(self, drug: Drug) -> str:
        """The FHIR export's code (tracker/fhir_codes.py), so the API never sends one FHIR withholds."""
        return exported_rxnorm_code(drug.name, drug.rxnorm_code)


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
    # Declared so the schema's enum holds "" too: a skipped dose has no timing.
    timing = serializers.ChoiceField(
        choices=DoseEvent.Timing.choices,
        allow_blank=True,
        read_only=True,
        help_text="How the dose stood against its plan; blank for a skipped dose.",
    )

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


class SessionAddendumSerializer(serializers.ModelSerializer):
    changed_fields = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The session fields this addendum changed."
    )

    class Meta:
        model = SessionAddendum
        fields = ("id", "reason", "changed_fields", "recorded_by", "created_at")
        read_only_fields = fields


class InClinicSessionSerializer(serializers.ModelSerializer):
    """A ketamine/esketamine session with its monitoring, as recorded in the admin or through this API."""

    addenda = SessionAddendumSerializer(
        many=True, read_only=True, help_text="Changes made after sign-off: who, when, why and which fields."
    )
    warnings = serializers.SerializerMethodField(
        help_text="What the clinician should see at once. After a write: that step's warnings (a pre-dose BP "
        "above 140/90 without a decision, a dose other than prescribed, an early discharge...; "
        "clinical-reference §1, §2), the change saved all the same. On a read: a high pre-dose BP still "
        "waiting for its withhold/proceed decision."
    )

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
            "care_setting",
            "bp_before_systolic",
            "bp_before_diastolic",
            "bp_before_at",
            "bp_decision",
            "bp_decision_reason",
            "bp_decision_by",
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
            "signed_off_at",
            "signed_off_by",
            "addenda",
            "warnings",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields

    def get_warnings(self, session: InClinicSession) -> list[str]:
        step = getattr(session, "step_warnings", None)
        if step is not None:
            return step
        return [bp_warning(session)] if session.needs_bp_decision else []


class WeightMeasurementSerializer(serializers.ModelSerializer):
    class Meta:
        model = WeightMeasurement
        fields = ("id", "patient", "measured_at", "weight_kg", "note", "created_at", *ENTERED_IN_ERROR_FIELDS)
        read_only_fields = fields


class ClinicalMeasurementSerializer(serializers.ModelSerializer):
    loinc = serializers.SerializerMethodField(help_text="The LOINC code of the kind (for BP, the systolic's).")

    class Meta:
        model = ClinicalMeasurement
        fields = (
            "id",
            "patient",
            "kind",
            "measured_at",
            "value",
            "diastolic",
            "unit",
            "loinc",
            "note",
            "created_at",
            *ENTERED_IN_ERROR_FIELDS,
        )
        read_only_fields = fields

    def get_loinc(self, obj: ClinicalMeasurement) -> str:
        return obj.spec.loinc


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


class RegimenSerializer(serializers.Serializer):
    """A regimen as a prescriber says it; its schedules are built by ``tracker.regimens.Regimen.specs``,
    the admin's own code path. Which fields count depends on ``kind``."""

    kind = serializers.ChoiceField(choices=RegimenKind.choices, help_text="How the doses are given.")
    times_of_day = serializers.ListField(
        child=serializers.CharField(max_length=5),
        min_length=1,
        max_length=4,
        default=["08:00"],
        help_text='Local "HH:MM" times in the patient\'s zone; phases and series use the first for every session. '
        "Ignored for as-needed (prn).",
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        max_length=7,
        default=list,
        help_text="0 = Monday ... 6 = Sunday. For weekdays; for esketamine_phases the start date's day and one "
        "other clinic day; for ketamine_series the infusion days.",
    )
    interval_days = serializers.IntegerField(
        min_value=1, max_value=365, default=1, help_text="For every_n_days: N, 2 or more."
    )
    prn_max_doses_per_day = serializers.IntegerField(
        min_value=1, max_value=24, required=False, allow_null=True, help_text="For prn: the most doses a day."
    )
    continuation_every_weeks = serializers.IntegerField(
        min_value=1, max_value=2, default=2, help_text="For esketamine_phases: sessions from week 9 every 1 or 2 weeks."
    )
    infusions = serializers.IntegerField(
        min_value=1,
        max_value=24,
        required=False,
        allow_null=True,
        help_text="For ketamine_series: how many infusions (the clinic's default if omitted).",
    )


def regimen_of(data: dict[str, Any]) -> Regimen:
    return Regimen(
        kind=data["kind"],
        times_of_day=tuple(data["times_of_day"]),
        weekdays=tuple(data["weekdays"]),
        interval_days=data["interval_days"],
        prn_max_doses_per_day=data.get("prn_max_doses_per_day"),
        continuation_every_weeks=data["continuation_every_weeks"],
        infusions=data.get("infusions"),
    )


def request_specs(
    data: dict[str, Any], *, drug: Drug, start_date: Any, end_date: Any = None
) -> list[ScheduleSpec] | None:
    """The request's schedules: as sent, built from its regimen (ServiceError names the field), or None."""
    if data.get("regimen") is not None:
        return regimen_of(data["regimen"]).specs(drug=drug, start_date=start_date, end_date=end_date)
    return schedule_specs(data.get("schedules"))


class SchedulesOrRegimenSerializer(serializers.Serializer):
    """When the doses are due: raw ``schedules`` or a ``regimen`` to build them from, exactly one."""

    # An explicit ListSerializer: ``many=True`` would pass allow_null to each item too, and a
    # ``[null]`` reached the service (a 500); the list may be null, its items may not.
    schedules = serializers.ListSerializer(
        child=ScheduleSpecSerializer(),
        min_length=1,
        max_length=4,
        required=False,
        allow_null=True,
        help_text="The dose schedules as they are stored; or send a regimen instead.",
    )
    regimen = RegimenSerializer(
        required=False,
        allow_null=True,
        help_text="A regimen (e.g. esketamine phases, a ketamine series) whose schedules the server builds, "
        "as the admin's prescribe form does; or send schedules instead.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_schedules, has_regimen = attrs.get("schedules") is not None, attrs.get("regimen") is not None
        if has_schedules and has_regimen:
            raise serializers.ValidationError({"regimen": ["Send either schedules or a regimen, not both."]})
        if not (has_schedules or has_regimen):
            raise serializers.ValidationError({"schedules": ["Send the schedules, or a regimen to build them from."]})
        return attrs


DOSE = {"max_digits": 8, "decimal_places": 2, "min_value": 0}


class PrescriptionPreviewRequestSerializer(SchedulesOrRegimenSerializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    drug = serializers.PrimaryKeyRelatedField(queryset=Drug.objects.all())
    start_date = CourseDateField()
    end_date = CourseDateField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs.get("end_date") is not None and attrs["end_date"] < attrs["start_date"]:
            raise serializers.ValidationError({"end_date": ["The end date cannot be before the start date."]})
        return attrs


class PrescriptionPreviewSerializer(serializers.Serializer):
    timezone = serializers.CharField(help_text="The patient's time zone, whose wall clock the doses follow.")
    due_at = serializers.ListField(
        child=serializers.DateTimeField(),
        help_text="The next planned doses (at most 8) from now, as instants with the patient's UTC offset. "
        "Nothing is saved.",
    )


class PrescribeSerializer(PrescriptionPreviewRequestSerializer):
    dose = serializers.DecimalField(**DOSE)
    dose_unit = serializers.ChoiceField(
        choices=DoseUnit.choices,
        required=False,
        allow_null=True,
        help_text="The dose's unit; the drug's own unit if omitted. A unit that does not fit the drug is refused.",
    )
    route = serializers.ChoiceField(choices=Route.choices, required=False)
    indication = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RescheduleSerializer(SchedulesOrRegimenSerializer):
    reason = serializers.CharField(help_text="Why the times or days change; kept with the new schedule version.")


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
    skip_reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    location = serializers.ChoiceField(choices=DoseEvent.Location.choices, default=DoseEvent.Location.HOME)
    amount = serializers.DecimalField(**DOSE, required=False, allow_null=True)
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    client_key = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="An idempotency key the client makes once per dose (a UUID): sent again, e.g. on a retry "
        "after a lost answer, it answers with the dose already recorded instead of recording it twice.",
    )


class OutsideClinicReportSerializer(serializers.Serializer):
    prescription = ScopedPrimaryKeyField(queryset=Prescription.objects.select_related("drug", "patient"))
    occurred_at = CourseDateTimeField()
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


def numbered_answer_errors(detail: dict[Any, Any], data: Any) -> dict[Any, Any]:
    """DRF keys a bad list item by its index from 0 (``{"answers": {8: [...]}}``); a patient counts
    questions from 1. Each item's refusal becomes a message naming the question as the portal does."""
    items = detail.get("answers")
    if not isinstance(items, dict):
        return detail
    sent = data.get("answers") if isinstance(data, dict) else None
    scale = scales.SCALES.get(data.get("instrument")) if isinstance(data, dict) else None
    messages = []
    for index in sorted(items):
        value = sent[index] if isinstance(sent, list) and index < len(sent) else None
        if scale is not None and index < len(scale.items):
            messages.append(scales.answer_refusal(scale, index + 1, value))
        else:
            messages.extend(f"Question {index + 1}: {message}" for message in items[index])
    return {**detail, "answers": messages}


class AssessmentCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    instrument = serializers.ChoiceField(choices=Instrument.choices)
    answers = serializers.ListField(
        child=serializers.IntegerField(),
        max_length=50,
        help_text="One score per question, in the questionnaire's order (question 1 first). A missing or "
        "out-of-range answer is refused with the question's number and text.",
    )
    completed_at = CourseDateTimeField(required=False)
    source = serializers.ChoiceField(
        choices=Assessment.Source.choices,
        required=False,
        help_text="Clinicians only (default clinician); a patient's own answers are always patient-reported.",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError(numbered_answer_errors(dict(exc.detail), data)) from exc


class SideEffectCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    prescription = ScopedPrimaryKeyField(queryset=Prescription.objects.all(), required=False, allow_null=True)
    effect = serializers.CharField(max_length=40, help_text="A code from the side-effect catalogue, or 'other'.")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    severity = serializers.ChoiceField(choices=SideEffectReport.Severity.choices)
    onset_date = CourseDateField(required=False, allow_null=True)


class WeightCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    weight_kg = serializers.DecimalField(max_digits=5, decimal_places=1, help_text="In kilograms.")
    measured_at = CourseDateTimeField(required=False, help_text="When the patient was weighed; now if omitted.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ClinicMemberField(serializers.PrimaryKeyRelatedField):
    """A clinician of the caller's own clinic; others answer "does not exist", like missing ids."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(queryset=Clinician.objects.all(), **kwargs)

    def get_queryset(self) -> Any:
        request = self.context.get("request")
        member = actor_for(request).clinician if request is not None else None
        if member is None:
            return Clinician.objects.none()
        return super().get_queryset().filter(clinic_id=member.clinic_id)


def _reading(help_text: str) -> serializers.IntegerField:
    """A vital sign as measured; plausibility is the model's check, worded per field (mmHg, %...)."""
    return serializers.IntegerField(required=False, allow_null=True, help_text=help_text)


def _instant(help_text: str, *, allow_null: bool = True) -> CourseDateTimeField:
    return CourseDateTimeField(
        required=False, allow_null=allow_null, help_text=f"{help_text} ISO 8601 with its UTC offset."
    )


def _text(max_length: int, help_text: str) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, help_text=help_text)


class SessionStartSerializer(serializers.Serializer):
    """Open a session (``start_session``, the admin's add form): from a planned session or a prescription."""

    prescription = ScopedPrimaryKeyField(
        queryset=Prescription.objects.select_related("drug", "patient"),
        required=False,
        help_text="The active clinic-only prescription; taken from the planned session when omitted.",
    )
    planned_dose = ScopedPrimaryKeyField(
        queryset=PlannedDose.objects.select_related("prescription__drug", "prescription__patient"),
        required=False,
        allow_null=True,
        help_text="The planned session this session fulfils.",
    )
    administered_by = ClinicMemberField(
        required=False, help_text="The administering clinician of the clinic; the caller if omitted."
    )
    care_setting = serializers.ChoiceField(
        choices=InClinicSession.CareSetting.choices,
        required=False,
        help_text="§1: outpatient esketamine needs the patient's REMS enrolment. The patient's last "
        "session's setting if omitted.",
    )
    bp_before_systolic = _reading("Blood pressure before dosing, systolic (mmHg).")
    bp_before_diastolic = _reading("Blood pressure before dosing, diastolic (mmHg).")
    bp_before_at = _instant("When the pre-dose BP was taken; now if a BP is given without it.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        planned = attrs.get("planned_dose")
        if attrs.get("prescription") is None:
            if planned is None:
                raise serializers.ValidationError(
                    {"prescription": ["Give the prescription, or the planned session this session fulfils."]}
                )
            attrs["prescription"] = planned.prescription
        return attrs


class SessionUpdateSerializer(serializers.Serializer):
    """Record the session's next steps (``update_session``, the admin's change form).

    Only the fields sent count, and of those only the ones that differ from the record. They
    are applied in clinical order: pre-dose BP, the withhold/proceed decision, the dose,
    monitoring, then discharge, each with its own checks.
    """

    bp_before_systolic = _reading("Blood pressure before dosing, systolic (mmHg).")
    bp_before_diastolic = _reading("Blood pressure before dosing, diastolic (mmHg).")
    bp_before_at = _instant("When the pre-dose BP was taken.")
    bp_decision = serializers.ChoiceField(
        choices=[c for c in InClinicSession.BpDecision.choices if c[0]],
        required=False,
        help_text="§1 bp_threshold: after a pre-dose BP above 140/90, withhold the dose or proceed (with a reason).",
    )
    bp_decision_reason = _text(2000, "Why the dose is withheld or given; sent with bp_decision.")
    devices = serializers.IntegerField(
        required=False, allow_null=True, help_text="Esketamine: the number of 28 mg devices (1 to 3)."
    )
    dose_mg_per_kg = serializers.DecimalField(
        max_digits=5, decimal_places=3, required=False, allow_null=True, help_text="IV ketamine: the dose in mg/kg."
    )
    infusion_minutes = serializers.IntegerField(
        required=False, allow_null=True, help_text="IV ketamine: how many minutes the infusion ran."
    )
    first_device_at = _instant("The first device (or the infusion start); starts the observation clock.")
    lot_number = _text(40, "The lot number of the medicine given.")
    bp_40min_systolic = _reading("Blood pressure about 40 min after the first device, systolic (mmHg).")
    bp_40min_diastolic = _reading("Blood pressure about 40 min after the first device, diastolic (mmHg).")
    bp_40min_at = _instant("When the ~40-minute BP was taken.")
    spo2_lowest = _reading("The lowest SpO2 (%).")
    moaas_lowest = _reading("The lowest MOAA/s (0-5).")
    cadss_total = _reading("The CADSS total.")
    respiratory_depression = serializers.BooleanField(required=False, allow_null=True)
    observation_started_at = _instant("When the observation started.")
    adverse_events = _text(2000, "Adverse events during the session.")
    bp_discharge_systolic = _reading("Blood pressure at discharge, systolic (mmHg).")
    bp_discharge_diastolic = _reading("Blood pressure at discharge, diastolic (mmHg).")
    moaas_at_discharge = _reading("MOAA/s at discharge (0-5).")
    dissociation_resolved = serializers.BooleanField(required=False, allow_null=True)
    no_driving_acknowledged = serializers.BooleanField(
        required=False, help_text="No driving or machinery until the next day after a restful sleep (§1 driving)."
    )
    discharge_at = _instant("The discharge; completes the session and records the dose given.", allow_null=False)
    rems_form_submitted_at = _instant("When the REMS Patient Monitoring Form was sent.")
    addendum_reason = _text(
        2000, "Required to change a signed-off session: why (kept as an addendum with your name and the time)."
    )


class ClinicalMeasurementCreateSerializer(serializers.Serializer):
    patient = ScopedPrimaryKeyField(queryset=Patient.objects.current(), patient_path="")
    kind = serializers.ChoiceField(choices=ClinicalMeasurement.Kind.choices)
    value = serializers.DecimalField(
        max_digits=7, decimal_places=2, help_text="In the kind's unit (see `unit`); for blood pressure, the systolic."
    )
    diastolic = serializers.DecimalField(
        max_digits=5, decimal_places=1, required=False, allow_null=True, default=None, help_text="Blood pressure only."
    )
    measured_at = CourseDateTimeField(required=False, help_text="When it was measured; now if omitted.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    unit = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        help_text="The unit `value` is in: omitted or blank for the kind's own unit; glucose and lipids also "
        "`mmol/L`, converted to mg/dL on entry. Another unit is refused naming the kind's units.",
    )


class EnteredInErrorSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the record was entered in error; kept in its history.")


class ResolveFlagSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Required for urgent and critical flags."
    )
