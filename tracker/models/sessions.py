"""In-clinic ketamine and esketamine sessions, with the monitoring the label and REMS ask for.

One row per administration (or withheld administration) at the clinic, entered by a
clinician (clinical-reference §1 setting, REMS Patient Monitoring Form; §2 monitoring).
Completing a session also records the dose as a DoseEvent at the clinic, so adherence and
the plan see it; see ``tracker.services.sessions``. Facts computed from the row's own
fields live here as query-free properties; everything that spans rows is in the services
and in ``tracker.rules.ketamine``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from tracker import clinical
from tracker.models.base import ClinicalRecord
from tracker.models.clinics import Clinician
from tracker.models.doses import DoseEvent, PlannedDose
from tracker.models.drugs import Route
from tracker.models.patients import Patient
from tracker.models.prescriptions import Prescription

# Plausible ranges: typing errors (a systolic of 1400) are refused; real extremes are kept.
SYSTOLIC_RANGE = (50, 300)
DIASTOLIC_RANGE = (20, 200)
SPO2_RANGE = (50, 100)
CADSS_RANGE = (0, 92)  # §4 CADSS: 23 items 0–4
MOAAS_RANGE = (0, 5)  # §4 MOAA/s


def _between(field: str, bounds: tuple[int, int]) -> models.Q:
    low, high = bounds
    return models.Q(**{f"{field}__isnull": True}) | models.Q(**{f"{field}__gte": low, f"{field}__lte": high})


def _pair(field_a: str, field_b: str) -> models.Q:
    """Both values or neither: a blood pressure is systolic and diastolic together."""
    return models.Q(**{f"{field_a}__isnull": True, f"{field_b}__isnull": True}) | models.Q(
        **{f"{field_a}__isnull": False, f"{field_b}__isnull": False}
    )


def bp_text(systolic: int | None, diastolic: int | None) -> str:
    return f"{systolic}/{diastolic} mmHg" if systolic is not None else "not recorded"


def bp_over_threshold(systolic: int | None, diastolic: int | None) -> bool:
    """§1 bp_threshold: systolic > 140 or diastolic > 90 mmHg, strictly greater."""
    if systolic is None or diastolic is None:
        return False
    return systolic > clinical.get("BP_THRESHOLD_SYSTOLIC") or diastolic > clinical.get("BP_THRESHOLD_DIASTOLIC")


class InClinicSession(ClinicalRecord):
    """A ketamine or esketamine administration at the clinic and its observation."""

    class Status(models.TextChoices):
        STARTED = "started", "Started (not yet discharged)"
        COMPLETED = "completed", "Completed (dose given, patient discharged)"
        WITHHELD = "withheld", "Withheld (no dose given)"

    class CareSetting(models.TextChoices):
        # §1 setting: outpatient settings enrol the patient in the REMS first and file a monitoring
        # form per session; inpatient settings need neither.
        OUTPATIENT = "outpatient", "Outpatient (REMS-certified; enrolment and a monitoring form per session)"
        INPATIENT = "inpatient", "Inpatient (no REMS enrolment or monitoring form)"

    class BpDecision(models.TextChoices):
        NONE = "", "—"
        WITHHELD = "withheld", "Withhold the dose"
        PROCEEDED = "proceeded", "Proceed despite the blood pressure"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="clinic_sessions")
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="clinic_sessions")
    planned_dose = models.ForeignKey(
        PlannedDose,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clinic_sessions",
        help_text="The planned session this one fulfils.",
    )
    dose_event = models.OneToOneField(
        DoseEvent,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clinic_session",
        editable=False,
        help_text="The dose (or withheld dose) this session recorded.",
    )
    administered_by = models.ForeignKey(
        Clinician,
        on_delete=models.PROTECT,
        related_name="administered_sessions",
        verbose_name="administering clinician",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.STARTED, editable=False)
    route = models.CharField(max_length=20, choices=Route.choices)
    care_setting = models.CharField(
        max_length=12,
        choices=CareSetting.choices,
        default=CareSetting.OUTPATIENT,
        help_text="§1: inpatient settings need no REMS enrolment or monitoring form. Carried over from "
        "the patient's last session.",
    )

    preparation_confirmed = models.BooleanField(
        "preparation advice confirmed",
        null=True,
        blank=True,
        help_text="The nurse asked and the patient confirmed the label's preparation: no food for 2 hours and no "
        "drink for 30 minutes before, and a ride home.",
    )

    # Pre-dose (§1 bp_schedule, bp_threshold)
    bp_before_systolic = models.PositiveSmallIntegerField("BP before dosing: systolic", null=True, blank=True)
    bp_before_diastolic = models.PositiveSmallIntegerField("BP before dosing: diastolic", null=True, blank=True)
    bp_before_at = models.DateTimeField("BP before dosing taken at", null=True, blank=True)
    bp_decision = models.CharField(
        "decision on high blood pressure", max_length=12, choices=BpDecision.choices, blank=True, default=""
    )
    bp_decision_reason = models.TextField(blank=True)
    bp_decision_by = models.ForeignKey(
        Clinician, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    bp_decision_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Dosing (§1 devices; §2 dose)
    devices = models.PositiveSmallIntegerField(
        "esketamine devices", null=True, blank=True, help_text="28 mg each: 2 = 56 mg, 3 = 84 mg."
    )
    dose_mg_per_kg = models.DecimalField(
        "IV ketamine dose (mg/kg)", max_digits=5, decimal_places=3, null=True, blank=True
    )
    weight_kg = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        editable=False,
        help_text="The patient's weight used for a weight-based dose (copied at dosing).",
    )
    infusion_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    first_device_at = models.DateTimeField(
        "first device / infusion start",
        null=True,
        blank=True,
        help_text="Starts the observation clock (REMS: minutes from the first device).",
    )
    lot_number = models.CharField(max_length=40, blank=True)

    # Monitoring (§1 bp_schedule, respiratory, sedation, dissociation)
    bp_40min_systolic = models.PositiveSmallIntegerField("BP ~40 min: systolic", null=True, blank=True)
    bp_40min_diastolic = models.PositiveSmallIntegerField("BP ~40 min: diastolic", null=True, blank=True)
    bp_40min_at = models.DateTimeField("BP ~40 min taken at", null=True, blank=True)
    spo2_lowest = models.PositiveSmallIntegerField("lowest SpO2 (%)", null=True, blank=True)
    moaas_lowest = models.PositiveSmallIntegerField(
        "lowest MOAA/s", null=True, blank=True, help_text="0 = no response to pain … 5 = responds readily to name."
    )
    cadss_total = models.PositiveSmallIntegerField("CADSS total", null=True, blank=True)
    respiratory_depression = models.BooleanField(null=True, blank=True)
    observation_started_at = models.DateTimeField(null=True, blank=True)
    adverse_events = models.TextField(blank=True)

    # Discharge (§1 discharge_rule, driving)
    bp_discharge_systolic = models.PositiveSmallIntegerField("BP at discharge: systolic", null=True, blank=True)
    bp_discharge_diastolic = models.PositiveSmallIntegerField("BP at discharge: diastolic", null=True, blank=True)
    moaas_at_discharge = models.PositiveSmallIntegerField("MOAA/s at discharge", null=True, blank=True)
    dissociation_resolved = models.BooleanField("dissociation resolved at discharge", null=True, blank=True)
    no_driving_acknowledged = models.BooleanField(
        default=False,
        help_text="The patient acknowledged: no driving or machinery until the next day after a restful sleep.",
    )
    discharge_at = models.DateTimeField(null=True, blank=True)

    # REMS (§1 REMS Patient Monitoring Form)
    rems_form_submitted_at = models.DateTimeField("REMS monitoring form submitted at", null=True, blank=True)

    # The ketamine sweep's marker: every rule about this session has been judged for good.
    settled_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Sign-off: the record is finished; after this it changes only by an addendum (who, when, why).
    signed_off_at = models.DateTimeField(null=True, blank=True, editable=False)
    signed_off_by = models.ForeignKey(
        Clinician,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="signed_off_sessions",
        editable=False,
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "in-clinic session"
        constraints = [
            # One current session per planned session; a correction marks the old one in error.
            models.UniqueConstraint(
                fields=["planned_dose"],
                condition=models.Q(planned_dose__isnull=False, entered_in_error_at__isnull=True),
                name="tracker_inclinicsession_one_per_planned_dose",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["started", "completed", "withheld"]),
                name="tracker_inclinicsession_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(bp_decision__in=["", "withheld", "proceeded"]),
                name="tracker_inclinicsession_bp_decision_valid",
            ),
            models.CheckConstraint(
                condition=_between("bp_before_systolic", SYSTOLIC_RANGE)
                & _between("bp_40min_systolic", SYSTOLIC_RANGE)
                & _between("bp_discharge_systolic", SYSTOLIC_RANGE),
                name="tracker_inclinicsession_systolic_plausible",
            ),
            models.CheckConstraint(
                condition=_between("bp_before_diastolic", DIASTOLIC_RANGE)
                & _between("bp_40min_diastolic", DIASTOLIC_RANGE)
                & _between("bp_discharge_diastolic", DIASTOLIC_RANGE),
                name="tracker_inclinicsession_diastolic_plausible",
            ),
            models.CheckConstraint(
                condition=_pair("bp_before_systolic", "bp_before_diastolic")
                & _pair("bp_40min_systolic", "bp_40min_diastolic")
                & _pair("bp_discharge_systolic", "bp_discharge_diastolic"),
                name="tracker_inclinicsession_bp_pairs",
            ),
            models.CheckConstraint(
                condition=_between("moaas_lowest", MOAAS_RANGE) & _between("moaas_at_discharge", MOAAS_RANGE),
                name="tracker_inclinicsession_moaas_range",
            ),
            models.CheckConstraint(
                condition=_between("spo2_lowest", SPO2_RANGE), name="tracker_inclinicsession_spo2_range"
            ),
            models.CheckConstraint(
                condition=_between("cadss_total", CADSS_RANGE), name="tracker_inclinicsession_cadss_range"
            ),
            models.CheckConstraint(condition=_between("devices", (1, 3)), name="tracker_inclinicsession_devices_range"),
            models.CheckConstraint(
                condition=models.Q(dose_mg_per_kg__isnull=True) | models.Q(dose_mg_per_kg__gt=0),
                name="tracker_inclinicsession_mg_per_kg_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(discharge_at__isnull=True)
                | models.Q(first_device_at__isnull=False, discharge_at__gt=models.F("first_device_at")),
                name="tracker_inclinicsession_discharge_after_first_device",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="withheld") | models.Q(first_device_at__isnull=True),
                name="tracker_inclinicsession_withheld_has_no_dose",
            ),
        ]
        indexes = [
            # The ketamine sweep's scan: sessions whose rules are not all judged yet.
            models.Index(fields=["id"], condition=models.Q(settled_at__isnull=True), name="tracker_ics_unsettled"),
            models.Index(fields=["patient", "created_at"], name="tracker_ics_patient_time"),
        ]

    def __str__(self) -> str:
        when = self.first_device_at or self.created_at
        return f"{self.prescription.drug} session {when:%Y-%m-%d %H:%M} UTC ({self.get_status_display().lower()})"

    # --- Facts from the row's own fields (no queries) -----------------------------------

    @property
    def is_esketamine(self) -> bool:
        return self.route == Route.NASAL

    @property
    def dose_amount(self) -> Decimal | None:
        """The dose in the prescription's unit: mg for esketamine (devices × 28), mg/kg for IV ketamine."""
        if self.is_esketamine:
            return None if self.devices is None else Decimal(self.devices * clinical.get("ESK_MG_PER_DEVICE"))
        return self.dose_mg_per_kg

    @property
    def dose_display(self) -> str:
        if self.is_esketamine and self.devices:
            return f"{self.dose_amount:f} mg ({self.devices} device{'s' if self.devices > 1 else ''})"
        if self.dose_mg_per_kg is not None:
            total = f", {self.dose_mg_per_kg * self.weight_kg:.1f} mg" if self.weight_kg else ""
            minutes = f" over {self.infusion_minutes} min" if self.infusion_minutes else ""
            return f"{self.dose_mg_per_kg.normalize():f} mg/kg{total}{minutes}"
        return "—"

    @property
    def pre_dose_bp_high(self) -> bool:
        return bp_over_threshold(self.bp_before_systolic, self.bp_before_diastolic)

    @property
    def needs_bp_decision(self) -> bool:
        return self.pre_dose_bp_high and not self.bp_decision

    @property
    def observation_minutes(self) -> int | None:
        """§1 observation_clock: whole minutes from the first device to discharge."""
        if self.first_device_at is None or self.discharge_at is None:
            return None
        return int((self.discharge_at - self.first_device_at).total_seconds() // 60)

    @property
    def earliest_discharge_at(self) -> dt.datetime | None:
        """§1 min_observation (esketamine: 120 min from the first device); §2 (IV: 60 min after the infusion)."""
        if self.first_device_at is None:
            return None
        if self.is_esketamine:
            return self.first_device_at + dt.timedelta(minutes=clinical.get("ESK_MIN_OBSERVATION_MINUTES"))
        infusion = dt.timedelta(minutes=self.infusion_minutes or 0)
        after = dt.timedelta(minutes=clinical.get("KETAMINE_OBSERVATION_AFTER_INFUSION_MINUTES"))
        return self.first_device_at + infusion + after

    @property
    def minimum_observation_minutes(self) -> int | None:
        """The whole minutes from the first device before which discharge is early (esketamine: 120)."""
        earliest = self.earliest_discharge_at
        if earliest is None or self.first_device_at is None:
            return None
        return int((earliest - self.first_device_at).total_seconds() // 60)

    @property
    def discharged_early(self) -> bool:
        """§1 discharge_rule "≥ 120 min since the first device": early only *before* that instant.

        The one definition of early discharge: the service's warning at discharge and the
        ketamine sweep's esk.early_discharge flag both ask this, so discharge at exactly
        120 minutes is allowed by both, and 119 minutes is early for both.
        """
        earliest = self.earliest_discharge_at
        return earliest is not None and self.discharge_at is not None and self.discharge_at < earliest

    @property
    def bp_40min_in_window(self) -> bool:
        """§1 bp_40min_window: the reading counts if taken 30–60 min after the first device."""
        if self.bp_40min_at is None or self.first_device_at is None or self.bp_40min_systolic is None:
            return False
        low, high = clinical.get("BP_40MIN_WINDOW_MINUTES")
        minutes = (self.bp_40min_at - self.first_device_at).total_seconds() / 60
        return low <= minutes <= high

    def recovery_gaps(self) -> list[str]:
        """§1 discharge_rule: what was not yet true at discharge (MOAA/s 5, dissociation resolved)."""
        gaps = []
        if self.moaas_at_discharge is not None and self.moaas_at_discharge < clinical.get("DISCHARGE_MOAAS_REQUIRED"):
            gaps.append(f"MOAA/s {self.moaas_at_discharge} (needs {clinical.get('DISCHARGE_MOAAS_REQUIRED')})")
        if self.dissociation_resolved is False:
            gaps.append("dissociation not resolved")
        return gaps

    def missing_monitoring(self) -> list[str]:
        """Required session fields not recorded (§1 bp_schedule, respiratory, sedation, driving, discharge)."""
        if self.status == self.Status.WITHHELD:
            return []
        missing = []
        if self.bp_before_systolic is None:
            missing.append("BP before dosing")
        if self.first_device_at is None:
            missing.append("dose and time of the first device")
        if not self.bp_40min_in_window:
            low, high = clinical.get("BP_40MIN_WINDOW_MINUTES")
            missing.append(f"BP about 40 min after the first device ({low}–{high} min)")
        if self.spo2_lowest is None:
            missing.append("SpO2")
        if self.moaas_at_discharge is None:
            missing.append("MOAA/s at discharge")
        if self.dissociation_resolved is None:
            missing.append("dissociation check at discharge")
        if self.bp_discharge_systolic is None:
            missing.append("BP at discharge")
        if self.discharge_at is None:
            missing.append("discharge time")
        if not self.no_driving_acknowledged:
            missing.append("no-driving acknowledgement")
        return missing

    def clean(self) -> None:
        """Row-level checks with messages beside each field; cross-row rules are in the service."""
        super().clean()
        errors: dict[str, str] = {}
        for prefix, label in (
            ("bp_before", "before dosing"),
            ("bp_40min", "at ~40 min"),
            ("bp_discharge", "at discharge"),
        ):
            sys_value = getattr(self, f"{prefix}_systolic")
            dia_value = getattr(self, f"{prefix}_diastolic")
            if (sys_value is None) != (dia_value is None):
                errors[f"{prefix}_diastolic" if dia_value is None else f"{prefix}_systolic"] = (
                    f"Give both systolic and diastolic blood pressure {label}."
                )
            if sys_value is not None and not SYSTOLIC_RANGE[0] <= sys_value <= SYSTOLIC_RANGE[1]:
                errors[f"{prefix}_systolic"] = f"Systolic {sys_value} mmHg is not plausible; check the reading."
            if dia_value is not None and not DIASTOLIC_RANGE[0] <= dia_value <= DIASTOLIC_RANGE[1]:
                errors[f"{prefix}_diastolic"] = f"Diastolic {dia_value} mmHg is not plausible; check the reading."
        for field, bounds, label in (
            ("moaas_lowest", MOAAS_RANGE, "MOAA/s"),
            ("moaas_at_discharge", MOAAS_RANGE, "MOAA/s"),
            ("spo2_lowest", SPO2_RANGE, "SpO2"),
            ("cadss_total", CADSS_RANGE, "The CADSS total"),
        ):
            value = getattr(self, field)
            if value is not None and not bounds[0] <= value <= bounds[1]:
                errors[field] = f"{label} must be between {bounds[0]} and {bounds[1]}."
        max_devices = clinical.get("ESK_MAX_DEVICES")
        if self.devices is not None and not 1 <= self.devices <= max_devices:
            mg = clinical.get("ESK_MG_PER_DEVICE")
            errors["devices"] = (
                f"Give 1 to {max_devices} devices ({mg} mg each); the maximum is {max_devices * mg} mg per session."
            )
        if self.dose_mg_per_kg is not None and self.dose_mg_per_kg <= 0:
            errors["dose_mg_per_kg"] = "The dose must be more than 0 mg/kg."
        if self.discharge_at is not None:
            if self.first_device_at is None:
                errors["discharge_at"] = "Record the dose and the time of the first device before the discharge."
            elif self.discharge_at <= self.first_device_at:
                errors["discharge_at"] = "Discharge must be after the first device."
        if errors:
            raise ValidationError(errors)


class SessionAddendum(models.Model):
    """A change to a signed-off session record: who made it, when, why, and which fields it changed.

    Append-only: a correction of an addendum is another addendum. The session's own history
    (simple-history) keeps the old and new values.
    """

    session = models.ForeignKey(InClinicSession, on_delete=models.PROTECT, related_name="addenda")
    reason = models.TextField()
    changed_fields = models.JSONField(default=list)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "session addenda"
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="tracker_sessionaddendum_reason_given"),
        ]

    def __str__(self) -> str:
        return f"Addendum to session {self.session_id} at {self.created_at:%Y-%m-%d %H:%M}"
