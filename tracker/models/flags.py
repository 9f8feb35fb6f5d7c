"""Flags: what the tracker raises for a clinician to look at, one flag per problem.

A flag is a *problem* (say, "sertraline doses are being missed"); the *facts* behind it
(each missed dose, each worsening score) are ``FlagFact`` rows. A repeat folds into the open
problem as one more fact instead of a new row on the worklist, and the problem's severity
may rise in place (three misses in a row make it urgent). A partial unique constraint
allows one unresolved flag per deduplication key (the problem), and a unique constraint one
fact per (flag, fact key), so a sweep that runs twice, or on two workers at once, raises
and folds nothing twice.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from tracker.models.base import ClinicalDeletionError, UndeletableQuerySet
from tracker.models.clinics import Clinician
from tracker.models.patients import Patient


class Severity(models.IntegerChoices):
    INFO = 10, "Info"
    WARNING = 20, "Warning"
    URGENT = 30, "Urgent"
    CRITICAL = 40, "Critical"


class FlagKind(models.TextChoices):
    """The flag catalogue of clinical-reference §0."""

    ESK_OUTSIDE_CLINIC = "esk.outside_clinic", "Ketamine/esketamine taken outside the clinic"
    ESK_EARLY_DISCHARGE = "esk.early_discharge", "Discharged before the minimum observation"
    ESK_BP_NO_DECISION = "esk.bp_no_decision", "High blood pressure with no recorded decision"
    ESK_MONITORING_INCOMPLETE = "esk.monitoring_incomplete", "Session monitoring incomplete"
    ESK_DISCHARGED_NOT_RECOVERED = "esk.discharged_not_recovered", "Discharged before recovery"
    ESK_SESSION_MISSED = "esk.session_missed", "Planned clinic session missed"
    ESK_REMS_FORM_OVERDUE = "esk.rems_form_overdue", "REMS monitoring form overdue"
    ESK_INTERACTION = "esk.interaction", "Interaction with ketamine/esketamine"
    ESK_TRD_UNCONFIRMED = "esk.trd_unconfirmed", "Treatment resistance not confirmed"
    DOSE_MISSED = "dose.missed", "Missed dose"
    DOSE_MISSED_REPEATED = "dose.missed_repeated", "Repeated missed doses"
    DOSE_OVER_DAILY_MAX = "dose.over_daily_max", "Above the daily maximum"
    SCALE_SUICIDALITY = "scale.suicidality", "Thoughts of self-harm reported"
    SCALE_WORSENING = "scale.worsening", "Symptoms worsening"
    SCALE_WORSENING_SEVERE = "scale.worsening_severe", "Symptoms worsening into the severe band"
    SCALE_NOT_IMPROVING = "scale.not_improving", "Not improving"
    SCALE_RESPONSE = "scale.response", "Response reached"
    SCALE_REMISSION = "scale.remission", "Remission reached"
    SE_SEVERE = "se.severe", "Severe side effect"
    SE_BURDEN = "se.burden", "Side-effect burden"
    SE_PERSISTENT = "se.persistent", "Persistent side effect"
    SE_AFTER_DOSE_INCREASE = "se.after_dose_increase", "New side effect after a dose increase"
    SE_CHECKIN_OVERDUE = "se.checkin_overdue", "Weekly check-in overdue"
    SE_YOUNG_ADULT_MONITORING_OVERDUE = "se.young_adult_monitoring_overdue", "Young adult PHQ-9 overdue"
    SE_METABOLIC_WEIGHT = "se.metabolic_weight", "Weight gain on an antipsychotic"
    SE_SEXUAL_DYSFUNCTION = "se.sexual_dysfunction", "Sexual side effects (ASEX positive screen)"
    MONITOR_OVERDUE = "monitor.overdue", "Monitoring measurement overdue"


class Flag(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="flags")
    kind = models.CharField(max_length=40, choices=FlagKind.choices)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    dedup_key = models.CharField(
        max_length=200, help_text="At most one unresolved flag per key (e.g. dose.missed:planned:123)."
    )
    message = models.TextField(help_text="What happened, in a sentence.")
    action = models.TextField(help_text="What to do next, in a sentence.")
    subject_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.PROTECT)
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    raised_at = models.DateTimeField(default=timezone.now, help_text="When the condition arose.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    assigned_to = models.ForeignKey(
        Clinician, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_flags"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution_note = models.TextField(blank=True)
    notified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The problem's shape, kept up to date by the sweeps as facts fold in (tracker.services.flag_insert).
    title = models.CharField(
        max_length=200, blank=True, help_text="What the problem is about, in a few words (e.g. Sertraline 50 mg)."
    )
    occurrences = models.PositiveIntegerField(
        default=1, help_text="Facts behind the problem still unanswered (e.g. doses missed and not logged since)."
    )
    streak = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Missed-dose problems: the latest run of consecutive misses."
    )
    last_occurred_at = models.DateTimeField(null=True, blank=True, help_text="When the newest fact arose.")
    escalated_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the tracker last raised the severity."
    )
    priority = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Clinical priority within a severity (clinical.TRIAGE_PRIORITY)."
    )

    objects = UndeletableQuerySet.as_manager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-severity", "raised_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedup_key"],
                condition=~models.Q(status="resolved"),
                name="tracker_flag_one_unresolved_per_key",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "acknowledged", "resolved"]), name="tracker_flag_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(severity__in=Severity.values), name="tracker_flag_severity_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="resolved") | models.Q(resolved_at__isnull=False),
                name="tracker_flag_resolved_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["-severity", "raised_at"],
                condition=~models.Q(status="resolved"),
                name="tracker_flag_worklist",
            ),
            models.Index(fields=["patient", "status"], name="tracker_flag_patient_status"),
            # The triage worklist ranks each patient by their top open flag: one backward probe
            # of this index per patient, whatever the number of flags (tracker.selectors.triage).
            # Its (patient, severity) prefix also serves the counts per severity.
            models.Index(
                "patient",
                models.F("severity").desc(),
                models.F("priority").desc(),
                "raised_at",
                condition=~models.Q(status="resolved"),
                name="tracker_flag_open_triage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.get_kind_display()} ({self.patient})"

    def delete(self, *args, **kwargs):
        raise ClinicalDeletionError("Flag")


class FlagFact(models.Model):
    """One fact behind a flag: a missed dose, a worsening score, a missed session.

    Facts are what happened; the flag is the problem they add up to. A fact is never deleted:
    when a later record answers it (the dose was logged late, the session was recorded) it is
    marked answered, the flag's count goes down, and a flag whose facts are all answered is
    resolved by the tracker with a note.
    """

    flag = models.ForeignKey(Flag, on_delete=models.PROTECT, related_name="facts")
    key = models.CharField(max_length=200, help_text="The fact's identity within its flag (e.g. planned:123).")
    subject_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.PROTECT)
    subject_id = models.PositiveBigIntegerField(null=True, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    message = models.TextField(help_text="The fact in a sentence.")
    occurred_at = models.DateTimeField(help_text="When the fact arose (e.g. the missed dose's deadline).")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    answered_at = models.DateTimeField(null=True, blank=True)
    answer_note = models.TextField(blank=True)

    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["flag", "key"], name="tracker_flagfact_one_per_key"),
            models.CheckConstraint(
                condition=models.Q(answered_at__isnull=True) | ~models.Q(answer_note=""),
                name="tracker_flagfact_answer_has_note",
            ),
        ]
        indexes = [
            # A late dose finds the fact it answers by key (planned:<id>) across the open problems.
            models.Index(
                fields=["key"], condition=models.Q(answered_at__isnull=True), name="tracker_flagfact_open_key"
            ),
        ]

    def __str__(self) -> str:
        return self.message

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None

    def delete(self, *args, **kwargs):
        raise ClinicalDeletionError("Flag fact")
