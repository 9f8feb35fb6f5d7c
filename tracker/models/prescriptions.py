"""Prescriptions, kept as versions, and the schedules that say when doses are due.

A dose change never edits a prescription: it creates a new version that ``replaces``
the old one, so titrations and tapers keep their whole history.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from tracker import dose_checks
from tracker.models.base import ClinicalRecord
from tracker.models.clinics import Clinician
from tracker.models.drugs import DoseBasis, DoseUnit, Drug, Route
from tracker.models.patients import Patient

TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_TIMES_PER_DAY = 4


class Prescription(ClinicalRecord):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUPERSEDED = "superseded", "Replaced by a new version"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    drug = models.ForeignKey(Drug, on_delete=models.PROTECT, related_name="prescriptions")
    dose = models.DecimalField(max_digits=8, decimal_places=2, help_text="Amount per dose.")
    dose_unit = models.CharField(max_length=10, choices=DoseUnit.choices, default=DoseUnit.MG)
    route = models.CharField(max_length=20, choices=Route.choices, default=Route.ORAL)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    prescriber = models.ForeignKey(Clinician, on_delete=models.PROTECT, related_name="prescriptions")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    indication = models.CharField(max_length=200, blank=True)
    change_reason = models.TextField(
        blank=True, help_text="Why this version was made (titration, taper, side effects...)."
    )
    replaces = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text="The earlier version this one replaces after a dose change.",
    )
    regular_doses_per_day = models.PositiveSmallIntegerField(
        default=1,
        editable=False,
        help_text="Scheduled doses on a dosing day, over the version's running schedules (kept by the services), "
        "so dose × this is the day's total when judging an adequate dose.",
    )
    dose_warnings = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="The dose checks' warnings (tracker/dose_checks.py): saved anyway, kept with the version.",
    )
    clinician_marked_failed = models.BooleanField(
        default=False,
        help_text="The prescriber judged this trial failed or not tolerated (clinical-reference §3).",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-start_date", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(dose__gt=0), name="tracker_prescription_dose_positive"),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="tracker_prescription_end_not_before_start",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "superseded", "completed", "stopped"]),
                name="tracker_prescription_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="tracker_rx_patient_status")]

    def __str__(self) -> str:
        return f"{self.drug} {self.dose_text} ({self.get_status_display().lower()})"

    @property
    def dose_text(self) -> str:
        """The dose as a clinician writes it: "50 mg", "0.5 mg/kg" (no trailing zeros)."""
        return f"{self.dose.normalize():f} {self.dose_unit}"

    @property
    def daily_dose(self) -> Decimal:
        """The scheduled total on a dosing day (dose × regular doses a day)."""
        return self.dose * self.regular_doses_per_day

    def maximum_for_patient(self) -> Decimal | None:
        """The label maximum, lowered for age where the label says so (§6 citalopram)."""
        patient = self.patient if self.patient_id else None
        return dose_checks.patient_maximum(self.drug, patient, self.start_date)[0]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.dose is not None and self.dose <= 0:
            errors["dose"] = "The dose must be more than 0."
        if self.drug_id:
            drug = self.drug
            if self.dose_unit != drug.dose_unit:
                errors["dose_unit"] = f"{drug} is dosed in {drug.dose_unit}; {self.dose_unit} does not fit this drug."
            if self.route and self.route not in drug.routes:
                allowed = ", ".join(Route(r).label.lower() for r in drug.routes)
                errors["route"] = f"{drug} is not given this way. Allowed: {allowed}."
            errors.update(
                dose_checks.limit_errors(
                    patient=self.patient if self.patient_id else None,
                    drug=drug,
                    dose=self.dose if self.dose is not None and self.dose > 0 else None,
                    dose_unit=self.dose_unit,
                    start_date=self.start_date,
                )
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors["end_date"] = "The end date cannot be before the start date."
        if self.patient_id and self.prescriber_id and self.prescriber.clinic_id != self.patient.clinic_id:
            errors["prescriber"] = "The prescriber must work at the patient's clinic."
        if errors:
            raise ValidationError(errors)

    def is_active_on(self, day) -> bool:
        return (
            self.status == self.Status.ACTIVE
            and self.entered_in_error_at is None
            and self.start_date <= day
            and (self.end_date is None or day <= self.end_date)
        )

    @property
    def is_current(self) -> bool:
        return self.is_active_on(timezone.localdate())


def times_of_day_error(kind: str, times: list) -> str | None:
    """What is wrong with a schedule's times of day, in a prescriber's words; None if nothing.

    Also called before a preview, which must not plan from times the schedule would refuse.
    """
    if kind == "prn":
        return "An as-needed schedule has no fixed times." if times else None
    if not 1 <= len(times) <= MAX_TIMES_PER_DAY:
        return f"Give one to {MAX_TIMES_PER_DAY} times of day."
    if any(not isinstance(t, str) or not TIME_OF_DAY.fullmatch(t) for t in times):
        return 'Write each time as HH:MM on a 24-hour clock, e.g. "08:00".'
    if len(set(times)) != len(times):
        return "Each time of day may appear only once."
    return None


class DoseSchedule(ClinicalRecord):
    """When the doses of one prescription version are due, in the patient's wall-clock time."""

    class Kind(models.TextChoices):
        DAILY = "daily", "Every day"
        WEEKDAYS = "weekdays", "On chosen weekdays"
        EVERY_N_DAYS = "every_n_days", "Every N days"
        PRN = "prn", "As needed (never counted as missed)"

    class Phase(models.TextChoices):
        NONE = "", "—"
        TITRATION = "titration", "Titration"
        MAINTENANCE = "maintenance", "Maintenance"
        TAPER = "taper", "Taper"
        INDUCTION = "induction", "Induction"
        CONTINUATION = "continuation", "Continuation"

    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="schedules")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.DAILY)
    times_of_day = models.JSONField(
        default=list, blank=True, help_text='Local times as "HH:MM", one to four a day, e.g. ["08:00", "20:00"].'
    )
    weekdays = models.JSONField(default=list, blank=True, help_text="For weekday schedules: 0 = Monday ... 6 = Sunday.")
    interval_days = models.PositiveSmallIntegerField(default=1, help_text="For every-N-days schedules.")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    phase = models.CharField(max_length=20, choices=Phase.choices, blank=True, default="")
    prn_max_doses_per_day = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="For as-needed schedules: the most doses a day."
    )
    planned_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Planned doses exist up to this instant; the horizon job extends it.",
    )
    active_from = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="No dose is planned before this instant (when the plan was made or takes effect).",
    )
    active_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="No dose is planned after this instant (the plan was replaced or stopped).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="Who made this schedule version (with created_at: who and when).",
    )
    change_reason = models.TextField(
        blank=True, editable=False, help_text="Why this version replaced the one before (a change of times or days)."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["start_date", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(interval_days__gte=1), name="tracker_schedule_interval_positive"),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="tracker_schedule_end_not_before_start",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["daily", "weekdays", "every_n_days", "prn"]),
                name="tracker_schedule_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.PRN:
            return "as needed"
        times = ", ".join(self.times_of_day)
        if self.kind == self.Kind.WEEKDAYS:
            names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            return f"{' '.join(names[d] for d in sorted(self.weekdays))} at {times}"
        if self.kind == self.Kind.EVERY_N_DAYS and self.interval_days > 1:
            return f"every {self.interval_days} days at {times}"
        return f"daily at {times}"

    @property
    def doses_per_day(self) -> int:
        return len(self.times_of_day) if self.kind != self.Kind.PRN else (self.prn_max_doses_per_day or 1)

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if (times_error := times_of_day_error(self.kind, self.times_of_day or [])) is not None:
            errors["times_of_day"] = times_error
        if self.kind == self.Kind.WEEKDAYS:
            days = self.weekdays or []
            if not days or any(d not in range(7) for d in days) or len(set(days)) != len(days):
                errors["weekdays"] = "Choose at least one weekday (0 = Monday ... 6 = Sunday), each once."
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors["end_date"] = "The end date cannot be before the start date."
        if not errors and self.prescription_id:
            errors.update(self._daily_total_errors())
        if errors:
            raise ValidationError(errors)

    def _daily_total_errors(self) -> dict[str, str]:
        """The day's scheduled total must not exceed the label maximum (§6, per local day)."""
        rx = self.prescription
        maximum, named = dose_checks.patient_maximum(rx.drug, rx.patient, rx.start_date)
        if maximum is None or rx.drug.dose_basis != DoseBasis.DAY:
            return {}
        total = rx.dose * self.doses_per_day
        if total > maximum:
            field = "prn_max_doses_per_day" if self.kind == self.Kind.PRN else "times_of_day"
            return {
                field: f"{self.doses_per_day} doses of {rx.dose.normalize():f} {rx.dose_unit} make "
                f"{total.normalize():f} {rx.dose_unit} a day, above the maximum for {named}."
            }
        return {}
