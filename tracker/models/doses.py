"""Expected doses (materialised from schedules) and what actually happened to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from tracker.models.base import ClinicalRecord
from tracker.models.patients import Patient
from tracker.models.prescriptions import DoseSchedule, Prescription


class PlannedDose(models.Model):
    """One expected dose at a concrete UTC instant, expanded from a schedule.

    ``deadline`` (due + grace) is precomputed so the missed-dose sweep is one indexed
    range scan over pending rows. Pending rows in the future are a projection and may be
    regenerated when the plan changes; rows that are due or have an outcome are history.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Due"
        TAKEN = "taken", "Taken"
        SKIPPED = "skipped", "Skipped"
        MISSED = "missed", "Missed"
        CANCELLED = "cancelled", "Cancelled (plan changed)"

    # No single-column indexes on the foreign keys: each leads a composite index below
    # (patient, due_at), (prescription, due_at) and the (schedule, due_at) unique
    # constraint of live rows, which also serve the joins. A lone patient_id index made PostgreSQL read
    # whole histories for the sweep's 28-day context (docs/benchmarks.md).
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="planned_doses", db_index=False)
    prescription = models.ForeignKey(
        Prescription, on_delete=models.PROTECT, related_name="planned_doses", db_index=False
    )
    schedule = models.ForeignKey(DoseSchedule, on_delete=models.PROTECT, related_name="planned_doses", db_index=False)
    due_at = models.DateTimeField()
    deadline = models.DateTimeField(help_text="Due time plus grace; missed after this.")
    local_date = models.DateField(help_text="The patient's local calendar day of the dose.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            # One live dose per slot. A withdrawn (cancelled) row stays as history, so a plan
            # that wants the slot again (a time-zone change and back) plans a new row beside it.
            models.UniqueConstraint(
                fields=["schedule", "due_at"],
                condition=~models.Q(status="cancelled"),
                name="tracker_planneddose_one_live_per_slot",
            ),
            models.CheckConstraint(
                condition=models.Q(deadline__gte=models.F("due_at")), name="tracker_planneddose_deadline_after_due"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "taken", "skipped", "missed", "cancelled"]),
                name="tracker_planneddose_status_valid",
            ),
        ]
        indexes = [
            # Pending doses by deadline: the quiet sweep window and the ketamine sweep.
            models.Index(
                fields=["deadline"],
                condition=models.Q(status="pending"),
                name="tracker_pd_pending_deadline",
            ),
            # The sweep's claim: pending doses patient by patient, so a backlog's batch
            # holds whole patients (tracker.rules.missed_doses).
            models.Index(
                fields=["patient", "deadline"],
                condition=models.Q(status="pending"),
                name="tracker_pd_pending_patient",
            ),
            # "Today" and a patient's recent history.
            models.Index(fields=["patient", "due_at"], name="tracker_pd_patient_due"),
            models.Index(fields=["prescription", "due_at"], name="tracker_pd_rx_due"),
        ]

    def __str__(self) -> str:
        return f"{self.prescription.drug} due {self.due_at:%Y-%m-%d %H:%M} UTC ({self.status})"


class DoseEvent(ClinicalRecord):
    """A dose taken or skipped, as reported by the patient, a clinician or an integration."""

    class Outcome(models.TextChoices):
        TAKEN = "taken", "Taken"
        SKIPPED = "skipped", "Skipped"

    class Timing(models.TextChoices):
        ON_TIME = "on_time", "On time"
        EARLY = "early", "Early"
        LATE = "late", "Late"
        UNPLANNED = "unplanned", "Not in the plan"

    class Reporter(models.TextChoices):
        PATIENT = "patient", "Patient"
        CLINICIAN = "clinician", "Clinician"
        INTEGRATION = "integration", "Connected system"

    class Location(models.TextChoices):
        HOME = "home", "At home or elsewhere"
        CLINIC = "clinic", "At the clinic"

    class SkipChoice(models.TextChoices):
        """Why a patient skipped a dose, counted for the clinician; ``skip_reason`` keeps the words."""

        FORGOT = "forgot", "Forgot"
        SIDE_EFFECTS = "side_effects", "Side effects"
        RAN_OUT = "ran_out", "Ran out"
        FELT_BETTER = "felt_better", "Felt better"
        OTHER = "other", "Other reason"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="dose_events")
    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="dose_events")
    planned_dose = models.ForeignKey(
        PlannedDose, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.TAKEN)
    timing = models.CharField(max_length=10, choices=Timing.choices, blank=True)
    occurred_at = models.DateTimeField(help_text="When the dose was taken (or the decision to skip it).")
    local_date = models.DateField(help_text="The patient's local calendar day of occurred_at.")
    amount = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    location = models.CharField(max_length=10, choices=Location.choices, default=Location.HOME)
    skip_choice = models.CharField(
        max_length=20,
        choices=SkipChoice.choices,
        blank=True,
        help_text="The preset reason for a skipped dose (blank for doses skipped before the presets existed).",
    )
    skip_reason = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    reporter = models.CharField(max_length=12, choices=Reporter.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    outside_clinic_report = models.BooleanField(
        default=False,
        help_text="The patient reports taking an in-clinic-only drug outside the clinic.",
    )
    # A tap kept on the phone while offline is sent again until the phone hears back; the key
    # it made at the tap turns every resend into the same row (services.doses.record_dose).
    client_key = models.UUIDField(
        null=True,
        blank=True,
        editable=False,
        help_text="The idempotency key the patient's phone generated when the dose was tapped.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            # One current outcome per planned dose; a correction marks the old one in error.
            models.UniqueConstraint(
                fields=["planned_dose"],
                condition=models.Q(planned_dose__isnull=False, entered_in_error_at__isnull=True),
                name="tracker_doseevent_one_per_planned_dose",
            ),
            # Exactly once per tap: a replayed key is the same event, even one since undone.
            models.UniqueConstraint(
                fields=["patient", "client_key"],
                condition=models.Q(client_key__isnull=False),
                name="tracker_doseevent_one_per_client_key",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__isnull=True) | models.Q(amount__gt=0),
                name="tracker_doseevent_amount_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(outcome="taken") | ~models.Q(skip_reason=""),
                name="tracker_doseevent_skip_has_reason",
            ),
            # A preset reason only on a skipped dose, and only one of the presets.
            models.CheckConstraint(
                condition=models.Q(skip_choice="")
                | models.Q(
                    outcome="skipped", skip_choice__in=["forgot", "side_effects", "ran_out", "felt_better", "other"]
                ),
                name="tracker_doseevent_skip_choice_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "occurred_at"], name="tracker_de_patient_time"),
            models.Index(fields=["prescription", "local_date"], name="tracker_de_rx_day"),
        ]

    def __str__(self) -> str:
        return f"{self.prescription.drug} {self.get_outcome_display().lower()} {self.occurred_at:%Y-%m-%d %H:%M}"
