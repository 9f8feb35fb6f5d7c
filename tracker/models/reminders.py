"""Dose reminders the patient controls: their choices, and the outbox of reminders owed.

Nothing here is a clinical record: a reminder is a courtesy to the patient, so the tables
hold the patient's settings and what was emailed, not facts about the treatment.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tracker.models.doses import PlannedDose
from tracker.models.patients import Patient
from tracker.models.prescriptions import Prescription

MINUTES_BEFORE_MAX = 120  # the reminder sweep looks this far ahead (tracker.rules.reminders)


class ReminderSettings(models.Model):
    """A patient's quiet hours, on their own wall clock (both set, or neither)."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="reminder_settings")
    quiet_from = models.TimeField(null=True, blank=True, help_text="No reminder from this local time…")
    quiet_until = models.TimeField(null=True, blank=True, help_text="…until this local time (may be the next day).")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "reminder settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quiet_from__isnull=True, quiet_until__isnull=True)
                | (
                    models.Q(quiet_from__isnull=False, quiet_until__isnull=False)
                    & ~models.Q(quiet_from=models.F("quiet_until"))
                ),
                name="tracker_remindersettings_quiet_both_or_neither",
            ),
        ]

    def __str__(self) -> str:
        return f"Reminder settings of {self.patient}"


class PrescriptionReminder(models.Model):
    """Whether a prescription's planned doses are reminded, and how long before the due time."""

    prescription = models.OneToOneField(Prescription, on_delete=models.PROTECT, related_name="reminder")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescription_reminders")
    enabled = models.BooleanField(default=False)
    minutes_before = models.PositiveSmallIntegerField(default=15)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(minutes_before__lte=MINUTES_BEFORE_MAX),
                name="tracker_prescriptionreminder_minutes_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Reminder for {self.prescription} ({'on' if self.enabled else 'off'})"


class DoseReminder(models.Model):
    """The outbox: one reminder owed (or settled) for one planned dose.

    One row per planned dose (the unique key) is the guard that a dose is reminded at most
    once however often the sweep runs; ``status`` pending means the email is still owed.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Owed"
        SENT = "sent", "Sent"
        LOGGED = "logged", "Not sent: the dose was logged first"
        EXPIRED = "expired", "Not sent: the dose's time had passed"
        QUIET = "quiet", "Not sent: in the patient's quiet hours"
        NO_ADDRESS = "no_address", "Not sent: no email address"

    planned_dose = models.OneToOneField(PlannedDose, on_delete=models.PROTECT, related_name="reminder")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="dose_reminders", db_index=False)
    send_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    sent_at = models.DateTimeField(null=True, blank=True)
    channels = models.CharField(
        max_length=24,
        blank=True,
        help_text="How a sent reminder reached the patient: 'email', 'push' or 'email+push'.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sent", "logged", "expired", "quiet", "no_address"]),
                name="tracker_dosereminder_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status="sent", sent_at__isnull=False) | ~models.Q(status="sent"),
                name="tracker_dosereminder_sent_has_time",
            ),
        ]
        indexes = [
            # The outbox: what is owed, oldest first.
            models.Index(fields=["send_at"], condition=models.Q(status="pending"), name="tracker_dr_owed"),
            models.Index(fields=["patient", "send_at"], name="tracker_dr_patient_send"),
        ]

    def __str__(self) -> str:
        return f"Reminder for planned dose {self.planned_dose_id} ({self.status})"


class PushSubscription(models.Model):
    """One browser's Web Push subscription (RFC 8030/8291), made by the patient in the portal.

    The endpoint and keys come from the browser's ``PushManager.subscribe``. A subscription the
    patient turns off, or that the push service reports gone (404/410), is ended rather than
    deleted, so what was delivered where stays answerable.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000)
    p256dh = models.CharField(max_length=200, help_text="The browser's P-256 public key (base64url).")
    auth = models.CharField(max_length=64, help_text="The browser's authentication secret (base64url).")
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=100, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint"],
                condition=models.Q(ended_at__isnull=True),
                name="tracker_pushsubscription_endpoint_live_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["patient"], condition=models.Q(ended_at__isnull=True), name="tracker_push_live_by_patient"
            ),
        ]

    def __str__(self) -> str:
        return f"Push subscription {self.pk} of patient {self.patient_id}"
