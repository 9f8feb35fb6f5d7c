"""The plan never loses or doubles a dose (issue 13): nothing is deleted, no day doubled, no gap after an outage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.dosing import at, daily_course
from tracker import scheduling
from tracker.models import FlagFact, PlannedDose
from tracker.rules import missed_doses
from tracker.services.doses import record_dose
from tracker.services.patients import change_timezone
from tracker.services.prescriptions import ScheduleSpec, change_dose, reschedule, stop_prescription

pytestmark = pytest.mark.django_db
CANCELLED = PlannedDose.Status.CANCELLED


def ids(rx) -> set[int]:
    return set(PlannedDose.objects.filter(prescription=rx).values_list("id", flat=True))


def test_a_dose_change_withdraws_the_old_versions_future_doses_and_deletes_none(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    before = ids(rx)
    assert len(before) > 7
    change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 5),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-03T12:00"),
    )
    assert before <= ids(rx)  # every row is still there
    withdrawn = PlannedDose.objects.filter(prescription=rx, local_date__gte=dt.date(2026, 6, 5))
    assert withdrawn.exists()
    assert set(withdrawn.values_list("status", flat=True)) == {CANCELLED}
    # The old version keeps its plan up to the day before the change, once a day.
    kept = PlannedDose.objects.filter(prescription=rx).exclude(status=CANCELLED)
    assert sorted(kept.values_list("local_date", flat=True)) == [dt.date(2026, 6, d) for d in range(1, 5)]


def test_new_times_withdraw_the_old_future_doses_and_delete_none(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    before = ids(rx)
    reschedule(
        prescription=rx, schedules=[ScheduleSpec(times_of_day=("21:00",))], reason="Sleepy", now=at("2026-06-03T12:00")
    )
    assert before <= ids(rx)
    assert PlannedDose.objects.filter(prescription=rx, status=CANCELLED, due_at__gt=at("2026-06-03T12:00")).exists()


def test_a_stop_deletes_nothing(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    before = ids(rx)
    stop_prescription(prescription=rx, end_date=dt.date(2026, 6, 3), reason="Rash", now=at("2026-06-03T12:00"))
    assert before <= ids(rx)
    assert not PlannedDose.objects.filter(prescription=rx, local_date__gt=dt.date(2026, 6, 3)).exclude(status=CANCELLED)


def test_a_time_zone_change_mid_day_plans_no_second_dose_that_day_and_flags_nothing_for_it(patient, clinician):
    # London 08:00 (07:00 UTC) taken on 3 June; at 10:00 UTC the patient moves to New York,
    # where 08:00 is 12:00 UTC: still ahead, but 3 June's dose was already taken.
    rx = daily_course(patient, clinician, start="2026-06-01")
    record_dose(prescription=rx, occurred_at=at("2026-06-03T07:05"), reporter="patient", now=at("2026-06-03T07:05"))
    before = ids(rx)
    change_timezone(patient=patient, new_timezone="America/New_York", now=at("2026-06-03T10:00"))
    zone = patient.zone
    days = [
        d.due_at.astimezone(zone).date()
        for d in PlannedDose.objects.filter(prescription=rx).exclude(status=CANCELLED).order_by("due_at")
    ]
    assert days.count(dt.date(2026, 6, 3)) == 1
    assert days.count(dt.date(2026, 6, 4)) == 1
    assert before <= ids(rx)  # the withdrawn London doses are kept, cancelled
    missed_doses.sweep(now=at("2026-06-03T23:59"))
    assert not FlagFact.objects.filter(flag__patient=patient, occurred_at__date=dt.date(2026, 6, 3)).exists()
    tomorrow = PlannedDose.objects.exclude(status=CANCELLED).get(prescription=rx, due_at__date=dt.date(2026, 6, 4))
    assert tomorrow.due_at == at("2026-06-04T12:00")  # 08:00 in New York
    assert tomorrow.local_date == dt.date(2026, 6, 4)


def test_a_time_zone_change_and_back_plans_the_doses_again(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    change_timezone(patient=patient, new_timezone="America/New_York", now=at("2026-06-03T10:00"))
    change_timezone(patient=patient, new_timezone="Europe/London", now=at("2026-06-03T10:30"))
    live = PlannedDose.objects.filter(prescription=rx, local_date=dt.date(2026, 6, 5)).exclude(status=CANCELLED)
    assert list(live.values_list("due_at", flat=True)) == [at("2026-06-05T07:00")]


def test_the_horizon_catches_up_after_an_outage_including_schedules_that_ended_during_it(patient, clinician):
    # Planned to 3 June, then beat stopped for a week; the course ended on 6 June meanwhile.
    rx = daily_course(patient, clinician, start="2026-06-01", end_date=dt.date(2026, 6, 6))
    PlannedDose.objects.filter(prescription=rx, due_at__gt=at("2026-06-03T12:00")).delete()  # as if never planned
    rx.schedules.update(planned_until=at("2026-06-03T12:00"))
    made = scheduling.extend_horizon(now=at("2026-06-12T00:00"))
    assert made == 3
    days = sorted(PlannedDose.objects.filter(prescription=rx).values_list("local_date", flat=True))
    assert days == [dt.date(2026, 6, d) for d in range(1, 7)]
    # The doses of 4 to 6 June are then judged as any other: missed, flagged.
    missed_doses.sweep(now=at("2026-06-12T00:00"))
    assert FlagFact.objects.filter(flag__patient=patient).count() == 6
    # A schedule planned to its end is not read again.
    assert scheduling.extend_horizon(now=at("2026-06-13T00:00")) == 0
    assert not scheduling._schedules_needing_extension(at("2026-06-13T00:00"), at("2026-06-27T00:00")).exists()
