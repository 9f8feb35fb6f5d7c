"""Recording doses: matching to the plan, timing, the daily maximum, late logs after a miss."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.dosing import at, daily_course
from tracker.models import DoseEvent, Flag, FlagKind, PlannedDose, Severity
from tracker.rules import missed_doses
from tracker.services.doses import record_dose

PATIENT = DoseEvent.Reporter.PATIENT
pytestmark = pytest.mark.django_db


def log(rx, when: str, **kwargs) -> DoseEvent:
    kwargs.setdefault("now", at(when))
    return record_dose(prescription=rx, occurred_at=at(when), reporter=PATIENT, **kwargs)


def test_dose_within_two_hours_is_on_time_and_matches_the_slot(patient, clinician):
    rx = daily_course(patient, clinician)  # 08:00 London = 07:00 UTC in June
    event = log(rx, "2026-06-02T08:30")
    assert event.timing == DoseEvent.Timing.ON_TIME
    assert event.planned_dose.due_at == at("2026-06-02T07:00")
    assert event.planned_dose.status == PlannedDose.Status.TAKEN


def test_dose_three_hours_after_is_late(patient, clinician):
    rx = daily_course(patient, clinician)
    event = log(rx, "2026-06-02T10:00")
    assert (event.timing, event.planned_dose.due_at) == (DoseEvent.Timing.LATE, at("2026-06-02T07:00"))


def test_dose_with_no_open_planned_dose_in_window_is_unplanned(patient, clinician):
    rx = daily_course(patient, clinician, times=("08:00",))
    log(rx, "2026-06-02T07:00")
    event = log(rx, "2026-06-02T08:00")  # today's slot is taken; tomorrow's is 23 h away
    assert (event.timing, event.planned_dose) == (DoseEvent.Timing.UNPLANNED, None)


def test_dose_matches_the_nearest_of_two_slots(patient, clinician):
    rx = daily_course(patient, clinician, dose="25", times=("08:00", "20:00"))
    event = log(rx, "2026-06-02T16:00")  # 17:00 local: nearer 20:00 than 08:00
    assert event.planned_dose.due_at == at("2026-06-02T19:00")
    assert event.timing == DoseEvent.Timing.EARLY


def test_after_midnight_dose_credits_the_previous_evening(patient, clinician):
    rx = daily_course(patient, clinician, dose="25", times=("08:00", "22:00"))
    event = log(rx, "2026-06-02T23:30")  # 00:30 local on 3 June, 2.5 h after the 22:00 dose
    assert event.planned_dose.local_date.isoformat() == "2026-06-02"
    assert event.local_date.isoformat() == "2026-06-03"
    assert event.timing == DoseEvent.Timing.LATE


def test_future_time_beyond_tolerance_is_refused(patient, clinician):
    rx = daily_course(patient, clinician)
    with pytest.raises(ValidationError) as error:
        record_dose(prescription=rx, occurred_at=at("2026-06-02T09:00"), reporter=PATIENT, now=at("2026-06-02T08:00"))
    assert error.value.message_dict["occurred_at"] == ["That time is in the future. Enter the time you took the dose."]


def test_skipping_needs_a_reason(patient, clinician):
    rx = daily_course(patient, clinician)
    with pytest.raises(ValidationError) as error:
        log(rx, "2026-06-02T07:00", outcome=DoseEvent.Outcome.SKIPPED)
    assert error.value.message_dict["skip_reason"] == ["Please say why the dose was skipped."]


def test_the_same_planned_dose_cannot_be_logged_twice(patient, clinician):
    rx = daily_course(patient, clinician)
    first = log(rx, "2026-06-02T07:00")
    with pytest.raises(ValidationError) as error:
        log(rx, "2026-06-02T07:05", planned_dose=first.planned_dose)
    assert error.value.message_dict["planned_dose"] == ["This dose has already been recorded."]


def test_a_dose_logged_since_it_was_read_is_refused(patient, clinician):
    rx = daily_course(patient, clinician)
    planned = PlannedDose.objects.get(prescription=rx, due_at=at("2026-06-02T07:00"))
    stale = PlannedDose.objects.get(pk=planned.pk)  # a second page open on the same dose
    log(rx, "2026-06-02T07:05", planned_dose=planned)
    with pytest.raises(ValidationError) as error:
        log(rx, "2026-06-02T07:10", planned_dose=stale)
    assert error.value.message_dict["planned_dose"] == ["This dose has already been recorded."]
    assert DoseEvent.objects.count() == 1


def test_a_dose_missed_since_it_was_read_is_logged_late_and_its_flag_resolved(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-02")
    planned = PlannedDose.objects.get(prescription=rx, due_at=at("2026-06-02T07:00"))  # read while still due
    missed_doses.sweep(now=at("2026-06-02T14:00"))  # meanwhile the sweep marks it missed and flags it
    event = log(rx, "2026-06-02T13:30", planned_dose=planned, now=at("2026-06-02T14:30"))
    assert (event.planned_dose.pk, event.timing) == (planned.pk, DoseEvent.Timing.LATE)
    assert PlannedDose.objects.get(pk=planned.pk).status == PlannedDose.Status.TAKEN
    assert Flag.objects.get(kind=FlagKind.DOSE_MISSED).status == Flag.Status.RESOLVED


def test_a_refused_log_leaves_the_planned_dose_open(patient, clinician):
    """The planned dose is marked before the event is stored; a refused event takes that mark back."""
    rx = daily_course(patient, clinician)
    planned = PlannedDose.objects.get(prescription=rx, due_at=at("2026-06-02T07:00"))
    # An outcome stored without marking its planned dose (as an import might): the database
    # refuses a second current outcome for the same planned dose.
    DoseEvent.objects.create(
        patient=patient,
        prescription=rx,
        planned_dose=planned,
        occurred_at=at("2026-06-02T07:00"),
        local_date=planned.local_date,
        reporter=PATIENT,
    )
    with pytest.raises(ValidationError) as error:
        log(rx, "2026-06-02T07:05", planned_dose=planned)
    assert error.value.message_dict["planned_dose"] == ["This dose has already been recorded."]
    assert PlannedDose.objects.get(pk=planned.pk).status == PlannedDose.Status.PENDING
    assert DoseEvent.objects.count() == 1


def test_patient_cannot_self_log_an_in_clinic_only_drug(patient, clinician):
    rx = daily_course(
        patient, clinician, name="esketamine", dose="56", times=("10:00",), kind="weekdays", weekdays=(1,)
    )
    with pytest.raises(ValidationError) as error:
        log(rx, "2026-06-02T09:00")
    assert "given only at the clinic" in error.value.messages[0]
    assert not DoseEvent.objects.exists()


def test_dose_over_the_daily_maximum_raises_an_urgent_flag_at_once(patient, clinician):
    rx = daily_course(patient, clinician, dose="100", times=("08:00", "20:00"))  # 200 mg/day is the maximum
    log(rx, "2026-06-02T07:00")
    log(rx, "2026-06-02T19:00")
    assert not Flag.objects.filter(kind=FlagKind.DOSE_OVER_DAILY_MAX).exists()
    log(rx, "2026-06-02T21:00", amount=Decimal("50"))  # an extra 50 mg the same local day
    flag = Flag.objects.get(kind=FlagKind.DOSE_OVER_DAILY_MAX)
    assert flag.severity == Severity.URGENT
    assert (
        flag.message
        == "250 mg of Sertraline logged for 02 Jun 2026, above the maximum of 200 mg per local calendar day."
    )


def test_daily_maximum_counts_only_the_patients_own_doses(patient, other_patient, clinician, other_clinician):
    theirs = daily_course(other_patient, other_clinician, dose="100", times=("08:00", "20:00"))
    for when in ("2026-06-02T07:00", "2026-06-02T19:00"):
        log(theirs, when)
    mine = daily_course(patient, clinician, dose="100", times=("08:00", "20:00"))
    log(mine, "2026-06-02T07:00")
    log(mine, "2026-06-02T19:00")  # 200 mg: at the maximum, not above it
    assert not Flag.objects.filter(kind=FlagKind.DOSE_OVER_DAILY_MAX).exists()


def test_late_log_after_a_missed_flag_resolves_it_with_a_note(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-02")
    missed_doses.sweep(now=at("2026-06-02T14:00"))  # 07:00 UTC + 6 h grace has passed
    flag = Flag.objects.get(kind=FlagKind.DOSE_MISSED)
    event = log(rx, "2026-06-02T13:30", now=at("2026-06-02T14:30"))
    flag.refresh_from_db()
    assert event.timing == DoseEvent.Timing.LATE
    assert event.planned_dose.status == PlannedDose.Status.TAKEN
    assert flag.status == Flag.Status.RESOLVED
    assert flag.resolved_by is None
    assert flag.resolution_note == (
        "Resolved automatically: every missed dose behind this flag has been recorded since. "
        "The dose was logged late (patient), taken at 14:30 on 02 Jun 2026 local time."
    )
    fact = flag.facts.get()
    assert (fact.answered_at, fact.answer_note) == (
        at("2026-06-02T14:30"),
        ("The dose was logged late (patient), taken at 14:30 on 02 Jun 2026 local time."),
    )


def test_a_late_dose_answers_its_own_miss_and_the_problem_stays_open_for_the_rest(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    missed_doses.sweep(now=at("2026-06-03T14:00"))  # 1, 2 and 3 June missed: urgent, 3 in a row
    flag = Flag.objects.get()
    assert (flag.kind, flag.occurrences, flag.streak) == (FlagKind.DOSE_MISSED_REPEATED, 3, 3)
    log(rx, "2026-06-02T09:00", now=at("2026-06-03T15:00"))  # the patient took the 2 June dose after all
    flag.refresh_from_db()
    assert (flag.status, flag.occurrences, flag.streak) == (Flag.Status.OPEN, 2, 2)
    answered = flag.facts.get(answered_at__isnull=False)
    assert answered.subject.local_date == dt.date(2026, 6, 2)
    assert flag.history.latest().history_change_reason == "A fact was answered by a later record"
    log(rx, "2026-06-01T09:00", now=at("2026-06-03T15:05"))
    log(rx, "2026-06-03T09:00", now=at("2026-06-03T15:10"))
    flag.refresh_from_db()
    assert (flag.status, flag.occurrences, flag.resolved_by) == (Flag.Status.RESOLVED, 0, None)
    assert flag.facts.count() == 3  # nothing deleted: every fact stays, answered


def test_late_evening_dose_after_midnight_counts_for_the_evening_not_the_next_day(patient, clinician):
    rx = daily_course(patient, clinician, name="mirtazapine", dose="45", times=("21:30",))
    log(rx, "2026-06-01T23:17")  # 00:17 local on 2 June: the late dose of 1 June
    log(rx, "2026-06-02T20:30")  # 21:30 local on 2 June: that day's own dose
    assert not Flag.objects.filter(kind=FlagKind.DOSE_OVER_DAILY_MAX).exists()


def test_daily_maximum_does_not_count_a_skipped_dose(patient, clinician):
    rx = daily_course(patient, clinician, dose="100", times=("08:00", "20:00"))  # 200 mg/day is the maximum
    log(rx, "2026-06-02T07:00", outcome=DoseEvent.Outcome.SKIPPED, skip_reason="Felt sick")
    log(rx, "2026-06-02T19:00")
    log(rx, "2026-06-02T21:00", amount=Decimal("100"))  # taken: 200 mg, at the maximum
    assert not Flag.objects.filter(kind=FlagKind.DOSE_OVER_DAILY_MAX).exists()
    log(rx, "2026-06-02T22:00", amount=Decimal("1"))  # one milligram more is above it
    assert Flag.objects.filter(kind=FlagKind.DOSE_OVER_DAILY_MAX).exists()


def test_daily_maximum_does_not_count_a_dose_entered_in_error(patient, clinician):
    from tracker.services.records import mark_entered_in_error

    rx = daily_course(patient, clinician, dose="100", times=("08:00", "20:00"))
    wrong = log(rx, "2026-06-02T07:00")
    mark_entered_in_error(record=wrong, by=clinician.user, reason="Logged for the wrong day")
    log(rx, "2026-06-02T19:00")
    log(rx, "2026-06-02T21:00", amount=Decimal("100"))  # current doses: 200 mg, at the maximum
    assert not Flag.objects.filter(kind=FlagKind.DOSE_OVER_DAILY_MAX).exists()
    log(rx, "2026-06-02T22:00", amount=Decimal("1"))
    flag = Flag.objects.get(kind=FlagKind.DOSE_OVER_DAILY_MAX)
    assert flag.message.startswith("201 mg of Sertraline logged for 02 Jun 2026")
