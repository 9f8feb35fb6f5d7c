"""Entered in error: the only way a clinical record leaves current care."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tracker.models import (
    ClinicalRecord,
    DoseEvent,
    DoseSchedule,
    Patient,
    PlannedDose,
    Prescription,
    WeightMeasurement,
)
from tracker.services.errors import ServiceError
from tracker.services.measurements import sync_current_weight


@transaction.atomic
def mark_entered_in_error(*, record: ClinicalRecord, by: AbstractBaseUser, reason: str) -> ClinicalRecord:
    """Keep the record and its history, but take it out of current care, saying who and why."""
    if not reason.strip():
        raise ServiceError({"reason": "Say why the record was entered in error."})
    # Re-read under a row lock: a stale copy (a second tab) must not overwrite a marking.
    record = type(record).objects.select_for_update().get(pk=record.pk)
    if record.entered_in_error_at is not None:
        raise ServiceError("This record is already marked as entered in error.")
    record.entered_in_error_at = timezone.now()
    record.entered_in_error_by = by
    record.entered_in_error_reason = reason.strip()
    record._change_reason = f"Entered in error: {reason.strip()}"  # kept in the history row
    record.save(update_fields=["entered_in_error_at", "entered_in_error_by", "entered_in_error_reason", "updated_at"])
    _withdraw_from_care(record, now=record.entered_in_error_at)
    return record


def _withdraw_from_care(record: ClinicalRecord, *, now) -> None:
    """What a record in error leaves behind in the plan must not raise flags or count.

    A prescription or schedule in error plans nothing more and its pending doses are
    withdrawn; a dose event in error gives its planned dose back (due again, or missed
    by the next sweep if its time has passed), so the right dose can be logged; a weight
    in error no longer counts as the patient's current weight.
    """
    if isinstance(record, Prescription | DoseSchedule):
        schedules = record.schedules.all() if isinstance(record, Prescription) else [record]
        ids = [s.pk for s in schedules]
        DoseSchedule.objects.filter(pk__in=ids).filter(Q(active_until__isnull=True) | Q(active_until__gt=now)).update(
            active_until=now
        )
        PlannedDose.objects.filter(schedule_id__in=ids, status=PlannedDose.Status.PENDING).update(
            status=PlannedDose.Status.CANCELLED, status_changed_at=now
        )
    elif isinstance(record, DoseEvent) and record.planned_dose_id is not None:
        PlannedDose.objects.filter(
            pk=record.planned_dose_id, status__in=[PlannedDose.Status.TAKEN, PlannedDose.Status.SKIPPED]
        ).update(status=PlannedDose.Status.PENDING, status_changed_at=now)
    elif isinstance(record, WeightMeasurement):
        sync_current_weight(patient=Patient.objects.select_for_update().get(pk=record.patient_id))
