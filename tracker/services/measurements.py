"""Weights (with the patient's current weight kept in step) and the other clinical measurements.

``Patient.weight_kg`` is what weight-based doses (IV ketamine, clinical-reference §2) are
worked out from, so it must be the latest weight on record: every recorded weight and every
weight marked entered in error updates it in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from tracker import clinical
from tracker.models import ClinicalMeasurement, Patient, WeightMeasurement
from tracker.services.errors import ServiceError


@transaction.atomic
def record_weight(
    *,
    patient: Patient,
    weight_kg: Decimal,
    recorded_by: AbstractBaseUser | None,
    measured_at: dt.datetime | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> WeightMeasurement:
    """Store a weight; if it is the patient's latest, it becomes their current weight."""
    now = now or timezone.now()
    measured_at = measured_at or now
    if measured_at > now + dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")):
        raise ServiceError({"measured_at": "That time is in the future."})
    # Lock the patient first: two weights recorded at once must not leave the older as current.
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    measurement = WeightMeasurement(
        patient=locked,
        weight_kg=weight_kg,
        measured_at=measured_at,
        recorded_by=recorded_by,
        note=note.strip(),
        created_at=now,
    )
    measurement.full_clean()  # the plausible range, in the model's own words
    measurement.save()
    sync_current_weight(patient=locked)
    patient.weight_kg = locked.weight_kg  # the caller's copy too
    return measurement


def sync_current_weight(*, patient: Patient) -> Patient:
    """Set ``patient.weight_kg`` to the latest current measurement, writing only on a change.

    With no current measurement left (the only one was entered in error) the weight is
    cleared: a weight known to be wrong must not be dosed on, and IV ketamine then asks
    for a new one. Call inside a transaction that holds the patient's row lock.
    """
    latest = (
        WeightMeasurement.objects.current()
        .filter(patient=patient)
        .order_by("-measured_at", "-id")
        .values_list("weight_kg", "measured_at")
        .first()
    )
    weight = latest[0] if latest else None
    if patient.weight_kg != weight:
        patient.weight_kg = weight
        patient._change_reason = (  # kept in the patient's history
            f"Current weight from the measurement of {latest[1]:%Y-%m-%d %H:%M} UTC"
            if latest
            else "Current weight cleared: its measurement was entered in error"
        )
        patient.save(update_fields=["weight_kg", "updated_at"])
    return patient


@transaction.atomic
def record_measurement(
    *,
    patient: Patient,
    kind: str,
    value: Decimal,
    recorded_by: AbstractBaseUser | None,
    diastolic: Decimal | None = None,
    measured_at: dt.datetime | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> ClinicalMeasurement:
    """Store one height, blood pressure, pulse or blood-test result in its kind's unit.

    The kind fixes the unit (``MEASUREMENT_KINDS``); a value outside the kind's plausible range
    is refused naming the range, before the database's own check would.
    """
    now = now or timezone.now()
    measured_at = measured_at or now
    if measured_at > now + dt.timedelta(minutes=clinical.get("FUTURE_LOG_TOLERANCE_MINUTES")):
        raise ServiceError({"measured_at": "That time is in the future."})
    measurement = ClinicalMeasurement(
        patient=patient,
        kind=kind,
        value=value,
        diastolic=diastolic,
        measured_at=measured_at,
        recorded_by=recorded_by,
        note=note.strip(),
        created_at=now,
    )
    measurement.full_clean()  # sets the unit; the range in the model's own words
    measurement.save()
    return measurement
