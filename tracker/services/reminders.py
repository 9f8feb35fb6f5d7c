"""Writing a patient's reminder choices: quiet hours and, per medicine, on/off and how early."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import transaction

from tracker.models import Patient, PrescriptionReminder, ReminderSettings
from tracker.services.errors import ServiceError

# The choices offered; the sweep looks MINUTES_BEFORE_MAX ahead (tracker.models.reminders).
MINUTES_BEFORE_CHOICES = (0, 5, 10, 15, 30, 60, 120)


@dataclass(frozen=True)
class ReminderChoice:
    enabled: bool
    minutes_before: int


@transaction.atomic
def save_reminder_settings(
    *,
    patient: Patient,
    quiet_from: dt.time | None,
    quiet_until: dt.time | None,
    choices: Mapping[int, ReminderChoice],
    now: dt.datetime,
) -> None:
    """Store the patient's quiet hours and their choice for each of their prescriptions.

    ``choices`` maps prescription ids to choices; ids that are not this patient's current
    prescriptions are refused (a tampered form), never written against someone else.
    """
    if (quiet_from is None) != (quiet_until is None):
        missing = "quiet_until" if quiet_until is None else "quiet_from"
        raise ServiceError({missing: "Give both the start and the end of your quiet hours, or neither."})
    if quiet_from is not None and quiet_from == quiet_until:
        raise ServiceError({"quiet_until": "Quiet hours must end at a different time from when they start."})
    own = set(patient.prescriptions.current().filter(pk__in=list(choices)).values_list("pk", flat=True))
    for prescription_id, choice in choices.items():
        if prescription_id not in own:
            raise ServiceError("One of those medicines is not yours; please reload the page.")
        if choice.minutes_before not in MINUTES_BEFORE_CHOICES:
            raise ServiceError({f"minutes_{prescription_id}": "Choose one of the times in the list."})
    ReminderSettings.objects.update_or_create(
        patient=patient, defaults={"quiet_from": quiet_from, "quiet_until": quiet_until, "updated_at": now}
    )
    for prescription_id, choice in choices.items():
        PrescriptionReminder.objects.update_or_create(
            prescription_id=prescription_id,
            defaults={
                "patient": patient,
                "enabled": choice.enabled,
                "minutes_before": choice.minutes_before,
                "updated_at": now,
            },
        )
