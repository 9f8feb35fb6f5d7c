"""Small builders for the rows tests/factories.py has no factory for, and a constraint checker.

They write rows directly (``objects.create``), skipping services and ``full_clean()``, so
the model tests can reach the database constraints and the no-delete guards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from tests import factories
from tracker.models import (
    Assessment,
    DoseEvent,
    DoseSchedule,
    Flag,
    FlagKind,
    Patient,
    PlannedDose,
    Prescription,
    Severity,
    SideEffectReport,
    WeightMeasurement,
)

UTC = dt.UTC
DUE_AT = dt.datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


@contextmanager
def violates(constraint: str, *, sqlite: str | None = None) -> Iterator[None]:
    """Expect an IntegrityError raised by the database for ``constraint``.

    The failing statement runs in its own savepoint so the test can go on using the
    connection. PostgreSQL names the constraint in every message; SQLite names CHECK
    constraints but reports a UNIQUE violation by its columns, so ``sqlite`` gives the
    text to look for there when it differs.
    """
    with pytest.raises(IntegrityError) as excinfo, transaction.atomic():
        yield
    expected = sqlite if (sqlite is not None and connection.vendor == "sqlite") else constraint
    assert expected in str(excinfo.value), f"expected {expected!r} in {excinfo.value!s}"


def make_schedule(prescription: Prescription | None = None, **kwargs: Any) -> DoseSchedule:
    if prescription is None:
        return factories.DoseScheduleFactory(**kwargs)
    return factories.DoseScheduleFactory(prescription=prescription, **kwargs)


def make_planned_dose(
    schedule: DoseSchedule, *, due_at: dt.datetime = DUE_AT, grace: dt.timedelta = dt.timedelta(hours=6), **kwargs: Any
) -> PlannedDose:
    rx = schedule.prescription
    values: dict[str, Any] = {
        "patient": rx.patient,
        "prescription": rx,
        "schedule": schedule,
        "due_at": due_at,
        "deadline": due_at + grace,
        "local_date": due_at.date(),
    }
    values.update(kwargs)
    return PlannedDose.objects.create(**values)


def make_dose_event(prescription: Prescription, **kwargs: Any) -> DoseEvent:
    values: dict[str, Any] = {
        "patient": prescription.patient,
        "prescription": prescription,
        "outcome": DoseEvent.Outcome.TAKEN,
        "occurred_at": DUE_AT,
        "local_date": DUE_AT.date(),
        "reporter": DoseEvent.Reporter.PATIENT,
    }
    values.update(kwargs)
    return DoseEvent.objects.create(**values)


def make_assessment(patient: Patient, **kwargs: Any) -> Assessment:
    values: dict[str, Any] = {
        "patient": patient,
        "instrument": "phq9",
        "answers": [1, 1, 1, 1, 1, 1, 1, 0, 0],
        "completed_at": DUE_AT,
        "source": Assessment.Source.PATIENT,
    }
    values.update(kwargs)
    return Assessment.objects.create(**values)


def make_side_effect(patient: Patient, **kwargs: Any) -> SideEffectReport:
    values: dict[str, Any] = {
        "patient": patient,
        "effect": "nausea",
        "severity": SideEffectReport.Severity.MILD,
        "reported_at": DUE_AT,
    }
    values.update(kwargs)
    return SideEffectReport.objects.create(**values)


def make_flag(patient: Patient, **kwargs: Any) -> Flag:
    values: dict[str, Any] = {
        "patient": patient,
        "kind": FlagKind.DOSE_MISSED,
        "severity": Severity.WARNING,
        "dedup_key": f"dose.missed:patient:{patient.pk}",
        "message": "A dose of sertraline was missed.",
        "action": "Ask the patient about the missed dose.",
    }
    values.update(kwargs)
    return Flag.objects.create(**values)


def make_weight(patient: Patient, **kwargs: Any) -> WeightMeasurement:
    values: dict[str, Any] = {"patient": patient, "measured_at": DUE_AT, "weight_kg": Decimal("72.5")}
    values.update(kwargs)
    return WeightMeasurement.objects.create(**values)
