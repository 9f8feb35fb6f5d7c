"""Corrections to the plan: records entered in error, stops entered late, phase dates across
dose changes, daily totals over several schedules, clinic-only drugs, DST collisions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.dosing import at, daily_course
from tests.factories import drug
from tracker import scheduling
from tracker.models import DoseSchedule, Flag, FlagFact, PlannedDose
from tracker.rules import missed_doses
from tracker.services.doses import record_dose
from tracker.services.prescriptions import ScheduleSpec, change_dose, prescribe, stop_prescription
from tracker.services.records import mark_entered_in_error

pytestmark = pytest.mark.django_db


def test_prescription_in_error_withdraws_its_pending_doses_and_raises_no_flags(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    mark_entered_in_error(record=rx, by=clinician.user, reason="Wrong patient")
    assert not PlannedDose.objects.filter(prescription=rx, status=PlannedDose.Status.PENDING).exists()
    assert missed_doses.sweep(now=at("2026-06-20T00:00")).examined == 0
    assert scheduling.extend_horizon(now=at("2026-06-20T00:00")) == 0
    assert not Flag.objects.exists()


def test_dose_event_in_error_gives_the_planned_dose_back(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-02")
    event = record_dose(
        prescription=rx, occurred_at=at("2026-06-02T07:00"), reporter="patient", now=at("2026-06-02T07:00")
    )
    mark_entered_in_error(record=event, by=clinician.user, reason="Tapped the wrong medicine")
    planned = PlannedDose.objects.get(pk=event.planned_dose_id)
    assert planned.status == PlannedDose.Status.PENDING
    again = record_dose(
        prescription=rx,
        planned_dose=planned,
        occurred_at=at("2026-06-02T07:30"),
        reporter="patient",
        now=at("2026-06-02T07:30"),
    )
    assert again.planned_dose_id == planned.pk


def test_dose_change_keeps_phase_dates_and_drops_ended_phases(patient, clinician):
    rx = prescribe(
        patient=patient,
        drug=drug("esketamine"),
        dose=Decimal("56"),
        start_date=dt.date(2026, 6, 1),
        prescriber=clinician,
        now=at("2026-05-31T00:00"),
        schedules=[
            ScheduleSpec(kind="weekdays", times_of_day=("10:00",), weekdays=(0, 3), end_date=dt.date(2026, 6, 28)),
            ScheduleSpec(kind="weekdays", times_of_day=("10:00",), weekdays=(0,), start_date=dt.date(2026, 6, 29)),
        ],
    )
    new = change_dose(
        prescription=rx,
        new_dose=Decimal("84"),
        effective_date=dt.date(2026, 6, 8),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-05T12:00"),
    )
    copied = sorted((s.start_date, s.end_date) for s in new.schedules.all())
    scheduling.extend_horizon(now=at("2026-06-20T00:00"))
    assert copied == [(dt.date(2026, 6, 8), dt.date(2026, 6, 28)), (dt.date(2026, 6, 29), None)]
    mondays = PlannedDose.objects.filter(prescription=new, local_date=dt.date(2026, 6, 29))
    assert mondays.count() == 1  # one session, not one per copied phase


def test_stop_also_ends_an_earlier_version_still_planned_until_a_future_change(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    new = change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 15),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-04T12:00"),
    )
    stop_prescription(prescription=new, end_date=dt.date(2026, 6, 5), reason="Rash", now=at("2026-06-05T12:00"))
    assert not PlannedDose.objects.filter(
        prescription__in=[rx, new], status=PlannedDose.Status.PENDING, local_date__gt=dt.date(2026, 6, 5)
    ).exists()


def test_stop_entered_late_withdraws_doses_after_the_last_day(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    # At 09:00 on 5 June: "stopped yesterday". Today's 08:00 dose must not become missed.
    stop_prescription(
        prescription=rx, end_date=dt.date(2026, 6, 4), reason="Stopped by patient", now=at("2026-06-05T08:00")
    )
    today = PlannedDose.objects.get(prescription=rx, local_date=dt.date(2026, 6, 5))
    assert today.status == PlannedDose.Status.CANCELLED
    missed_doses.sweep(now=at("2026-06-05T20:00"))
    assert not Flag.objects.filter(subject_id=today.pk).exists()


def test_two_schedules_together_above_the_daily_maximum_are_refused(patient, clinician):
    with pytest.raises(ValidationError) as error:
        prescribe(
            patient=patient,
            drug=drug("sertraline"),
            dose=Decimal("150"),
            start_date=dt.date(2026, 6, 1),
            prescriber=clinician,
            schedules=[ScheduleSpec(times_of_day=("08:00",)), ScheduleSpec(times_of_day=("20:00",))],
        )
    assert error.value.message_dict["schedules"] == [
        "Together the schedules give 2 doses of 150 mg, 300 mg a day, above the maximum for Sertraline: "
        "200 mg per local calendar day."
    ]


def test_staff_cannot_record_a_clinic_only_drug_as_taken_at_home(patient, clinician):
    rx = daily_course(
        patient, clinician, name="esketamine", dose="56", times=("10:00",), kind="weekdays", weekdays=(1,)
    )
    with pytest.raises(ValidationError) as error:
        record_dose(prescription=rx, occurred_at=at("2026-06-02T09:00"), reporter="integration", location="home")
    assert "given only at the clinic" in error.value.message_dict["location"][0]


def test_spring_forward_collision_keeps_one_dose_with_its_grace(patient, clinician):
    patient.timezone = "America/New_York"
    patient.save()
    rx = daily_course(patient, clinician, start="2026-03-07", dose="25", times=("02:30", "03:30"))
    day = PlannedDose.objects.filter(prescription=rx, local_date=dt.date(2026, 3, 8))
    assert day.count() == 1  # 02:30 does not exist and moves onto 03:30: one dose that day
    assert day.get().deadline > day.get().due_at
    assert isinstance(rx.schedules.get(), DoseSchedule)


def test_discharge_withdraws_doses_not_yet_due_and_plans_nothing_more(patient, clinician):
    from tracker.services.patients import discharge

    rx = daily_course(patient, clinician, start="2026-06-01")
    discharge(patient=patient, now=at("2026-06-05T12:00"))
    assert not PlannedDose.objects.filter(
        prescription=rx, status=PlannedDose.Status.PENDING, due_at__gt=at("2026-06-05T12:00")
    ).exists()
    assert scheduling.extend_horizon(now=at("2026-06-20T00:00")) == 0
    missed_doses.sweep(now=at("2026-06-20T00:00"))
    # Only the doses due while the patient was in care (1 to 5 June) can be missed.
    assert FlagFact.objects.filter(flag__patient=patient, key__startswith="planned:").count() == 5
