"""A patient's report of taking ketamine/esketamine outside the clinic: kept, and flagged critical at once."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from tests.dosing import at, daily_course
from tracker.models import DoseEvent, Flag, FlagKind, Severity
from tracker.services.doses import report_outside_clinic

pytestmark = pytest.mark.django_db


def esketamine(patient, clinician):
    return daily_course(
        patient, clinician, name="esketamine", dose="56", times=("10:00",), kind="weekdays", weekdays=(1, 4)
    )


def test_report_is_stored_and_raises_exactly_one_critical_flag_in_the_same_transaction(patient, clinician):
    rx = esketamine(patient, clinician)
    with transaction.atomic():
        event = report_outside_clinic(
            prescription=rx,
            occurred_at=at("2026-06-03T20:00"),
            reporter="patient",
            note="A friend gave me some",
            now=at("2026-06-03T21:00"),
        )
        flag = Flag.objects.get(kind=FlagKind.ESK_OUTSIDE_CLINIC)  # already there before commit
    assert event.outside_clinic_report and event.planned_dose is None
    assert DoseEvent.objects.filter(outside_clinic_report=True).count() == 1
    assert Flag.objects.count() == 1
    assert flag.severity == Severity.CRITICAL
    assert flag.message == (
        "Patient reports taking Esketamine (nasal) outside the clinic at 21:00 on 03 Jun 2026 (local time): "
        '"A friend gave me some".'
    )


def test_report_path_is_only_for_clinic_only_drugs(patient, clinician):
    rx = daily_course(patient, clinician)
    with pytest.raises(ValidationError) as error:
        report_outside_clinic(
            prescription=rx, occurred_at=at("2026-06-03T20:00"), reporter="patient", now=at("2026-06-03T21:00")
        )
    assert "can be logged as a normal dose" in error.value.message_dict["prescription"][0]
    assert not Flag.objects.exists()
