"""Changes to a patient's record that ripple into their plan."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tracker import scheduling
from tracker.models import DoseSchedule, Patient, PlannedDose
from tracker.models.patients import validate_timezone


@transaction.atomic
def change_timezone(*, patient: Patient, new_timezone: str, now: dt.datetime | None = None) -> Patient:
    """Move the patient to another zone: future doses follow the new wall clock, past ones stay."""
    validate_timezone(new_timezone)
    now = now or timezone.now()
    if patient.timezone == new_timezone:
        return patient
    patient.timezone = new_timezone
    patient.save(update_fields=["timezone", "updated_at"])
    scheduling.replan_patient(patient=patient, now=now)
    return patient


@transaction.atomic
def discharge(*, patient: Patient, now: dt.datetime | None = None) -> Patient:
    """End the patient's care here: nothing more is planned, and doses not yet due are withdrawn.

    Doses that fell due while the patient was in care are still judged by the sweeps.
    """
    now = now or timezone.now()
    patient.is_active = False
    patient.save(update_fields=["is_active", "updated_at"])
    DoseSchedule.objects.filter(prescription__patient=patient).filter(
        Q(active_until__isnull=True) | Q(active_until__gt=now)
    ).update(active_until=now)
    PlannedDose.objects.filter(patient=patient, status=PlannedDose.Status.PENDING, due_at__gt=now).update(
        status=PlannedDose.Status.CANCELLED, status_changed_at=now
    )
    return patient
