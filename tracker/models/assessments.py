"""Questionnaire responses and side-effect reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from tracker.models.base import ClinicalRecord
from tracker.models.patients import Patient
from tracker.models.prescriptions import Prescription


class Instrument(models.TextChoices):
    PHQ9 = "phq9", "PHQ-9 (depression)"
    GAD7 = "gad7", "GAD-7 (anxiety)"
    MADRS = "madrs", "MADRS (clinician-rated depression)"
    FIBSER = "fibser", "FIBSER (side-effect burden)"
    ASEX = "asex", "ASEX (sexual function)"
    PCL5 = "pcl5", "PCL-5 (PTSD symptoms)"
    CADSS = "cadss", "CADSS (dissociation)"


class Assessment(ClinicalRecord):
    """One completed questionnaire. Total and band are computed from the answers on save."""

    class Source(models.TextChoices):
        PATIENT = "patient", "Patient-reported"
        CLINICIAN = "clinician", "Clinician-rated"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    instrument = models.CharField(max_length=10, choices=Instrument.choices)
    answers = models.JSONField(help_text="Item scores in questionnaire order.")
    total = models.PositiveSmallIntegerField(editable=False)
    band = models.CharField(max_length=40, editable=False)
    completed_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    evaluated_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the symptom sweep judged this response."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-completed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(instrument__in=Instrument.values), name="tracker_assessment_instrument_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "instrument", "completed_at"], name="tracker_as_patient_instr"),
            models.Index(
                fields=["completed_at"], condition=models.Q(evaluated_at__isnull=True), name="tracker_as_unevaluated"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_instrument_display()} {self.total} ({self.band}) {self.completed_at:%Y-%m-%d}"

    def save(self, *args, **kwargs) -> None:
        # Never typed in: the scale computes total and band from the answers.
        from tracker import scales

        result = scales.score(self.instrument, self.answers)
        self.total, self.band = result.total, result.band
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        from tracker import scales

        scales.validate_answers(self.instrument, self.answers)


class SideEffectReport(ClinicalRecord):
    class Severity(models.TextChoices):
        MILD = "mild", "Mild: noticeable, not in the way"
        MODERATE = "moderate", "Moderate: gets in the way of daily life"
        SEVERE = "severe", "Severe: stops me doing things"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="side_effects")
    prescription = models.ForeignKey(
        Prescription, null=True, blank=True, on_delete=models.PROTECT, related_name="side_effects"
    )
    effect = models.CharField(max_length=40, help_text="A code from the side-effect catalogue, or 'other'.")
    description = models.TextField(blank=True, help_text="In the patient's own words.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    onset_date = models.DateField(null=True, blank=True)
    reported_at = models.DateTimeField()
    checkin = models.ForeignKey(
        Assessment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="side_effects",
        help_text="The weekly check-in (FIBSER) this report was part of, if any.",
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    evaluated_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the side-effect sweep judged this report."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-reported_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(severity__in=["mild", "moderate", "severe"]),
                name="tracker_sideeffect_severity_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(effect="other") | ~models.Q(description=""),
                name="tracker_sideeffect_other_described",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "reported_at"], name="tracker_se_patient_time"),
            models.Index(
                fields=["reported_at"], condition=models.Q(evaluated_at__isnull=True), name="tracker_se_unevaluated"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.effect} ({self.severity}) {self.reported_at:%Y-%m-%d}"
