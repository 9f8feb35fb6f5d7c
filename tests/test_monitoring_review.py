"""Review findings on the §5 monitoring schedules (issue 18), each pinned:

- the caseload and the overdue sweep follow the same course when two courses share a schedule;
- the sweep answers open facts it no longer finds missed (a measurement that raced the sweep,
  a stopped course), with the same answer call a new measurement makes;
- a baseline (week 0, or a stimulant's dose increase) is a before-treatment value: a later
  measurement does not answer it, while a later follow-up still catches up a missed one;
- the "owed again" note is timed in the patient's zone.

Courses start on fixed dates; the sweep and the services are given their ``now``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests import factories
from tests.dosing import daily_course
from tests.test_monitoring_windows import START, at, day, sweep
from tracker.models import Flag, FlagFact, FlagKind
from tracker.rules import loaders
from tracker.rules import monitoring as monitoring_rules
from tracker.selectors.monitoring import missed_by_patient, patient_dues
from tracker.services.assessments import submit_assessment
from tracker.services.flags import raise_flags
from tracker.services.measurements import record_measurement, record_weight
from tracker.services.prescriptions import change_dose, stop_prescription
from tracker.services.records import mark_entered_in_error

pytestmark = pytest.mark.django_db


def owed(patient, schedule: str) -> dict[str, bool]:
    """Each monitoring fact's due date -> whether it is still owed (unanswered)."""
    facts = FlagFact.objects.filter(
        flag__patient=patient, flag__kind=FlagKind.MONITOR_OVERDUE, flag__dedup_key__endswith=f":{schedule}"
    )
    return {f.key.rsplit(":", 1)[1]: f.answered_at is None for f in facts}


def courses(patient):
    return loaders.courses_by_patient([patient.pk])[patient.pk]


def bp_and_pulse(patient, n: int) -> None:
    for kind, value, diastolic in (("blood_pressure", "124", Decimal("80")), ("pulse", "72", None)):
        record_measurement(
            patient=patient, kind=kind, value=Decimal(value), diastolic=diastolic,
            recorded_by=None, measured_at=at(patient, n), now=at(patient, n),
        )  # fmt: skip


def test_caseload_and_sweep_agree_with_two_courses_on_one_schedule(patient, clinician):
    """Aripiprazole from 1 Jan and quetiapine from 20 Feb (both SGA), no weights: every date the
    caseload showed as overdue is a date the sweep flags, and no other (both follow aripiprazole)."""
    jan1, feb20 = dt.date(2026, 1, 1), dt.date(2026, 2, 20)
    daily_course(patient, clinician, name="aripiprazole", dose="5", start=jan1.isoformat())
    daily_course(patient, clinician, name="quetiapine", dose="150", start=feb20.isoformat())
    own = courses(patient)
    end = dt.date(2026, 4, 10)  # week 12 (26 Mar) closed on 2 Apr: no window is half-way
    shown: set[dt.date] = set()
    for n in range((end - jan1).days):
        now = dt.datetime.combine(jan1 + dt.timedelta(days=n), dt.time(12), tzinfo=patient.zone)
        shown |= {d.due_on for d in patient_dues(patient, own, now=now) if d.schedule == "antipsychotic_weight"}
    monitoring_rules.sweep(now=dt.datetime.combine(end, dt.time(12), tzinfo=patient.zone))
    flagged = {dt.date.fromisoformat(d) for d in owed(patient, "antipsychotic_weight")}
    assert flagged == shown == {jan1, dt.date(2026, 1, 29), dt.date(2026, 2, 26), dt.date(2026, 3, 26)}


class TestTheSweepAnswersWhatIsNoLongerMissed:
    def test_a_measurement_that_raced_the_sweep_is_answered_by_the_next_sweep(self, patient, clinician):
        """The sweep read no weight; the weight committed and found no fact; then the fact was raised."""
        daily_course(patient, clinician, name="aripiprazole", dose="5", start=START.isoformat())
        zones = {patient.pk: patient.zone}
        (stale,) = [
            m
            for m in missed_by_patient(zones, {patient.pk: courses(patient)}, now=at(patient, 10))[patient.pk]
            if m.schedule == "antipsychotic_weight"
        ]
        record_weight(patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=at(patient, 10))
        assert raise_flags([monitoring_rules.overdue_flag(patient.pk, stale, patient.zone)]) == 1
        assert owed(patient, "antipsychotic_weight") == {START.isoformat(): True}

        sweep(patient, 11)
        assert owed(patient, "antipsychotic_weight") == {START.isoformat(): False}
        flag = Flag.objects.get(patient=patient, dedup_key__endswith=":antipsychotic_weight")
        assert flag.status == Flag.Status.RESOLVED and flag.resolved_by is None
        assert flag.facts.get().answer_note.startswith("No longer owed on ")

    def test_a_stopped_course_has_its_facts_answered(self, patient, clinician):
        rx = daily_course(patient, clinician, name="aripiprazole", dose="5", start=START.isoformat())
        sweep(patient, 10)
        schedules = ("antipsychotic_weight", "antipsychotic_bp_glucose", "antipsychotic_lipids")
        assert all(owed(patient, s) == {START.isoformat(): True} for s in schedules)
        stop_prescription(prescription=rx, end_date=day(11), reason="Akathisia", now=at(patient, 11))
        sweep(patient, 12)  # the patient has no active course left, and is still swept
        assert all(owed(patient, s) == {START.isoformat(): False} for s in schedules)
        assert not Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE).exclude(
            status=Flag.Status.RESOLVED
        )


class TestABaselineIsNotCaughtUp:
    def test_a_week_4_weight_does_not_answer_the_missed_baseline(self, patient, clinician):
        daily_course(patient, clinician, name="aripiprazole", dose="5", start=START.isoformat())
        sweep(patient, 10)
        assert owed(patient, "antipsychotic_weight") == {START.isoformat(): True}
        record_weight(
            patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=at(patient, 28), now=at(patient, 28)
        )
        assert owed(patient, "antipsychotic_weight") == {START.isoformat(): True}
        sweep(patient, 29)
        assert owed(patient, "antipsychotic_weight") == {START.isoformat(): True}

    def test_a_late_baseline_in_its_own_window_still_answers_it(self, patient, clinician):
        daily_course(patient, clinician, name="aripiprazole", dose="5", start=START.isoformat())
        sweep(patient, 10)
        record_weight(
            patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=at(patient, 12), now=at(patient, 12)
        )
        assert owed(patient, "antipsychotic_weight") == {START.isoformat(): False}

    def test_a_bp_at_a_stimulant_dose_increase_does_not_answer_the_pre_drug_baseline(self, patient, clinician):
        rx = daily_course(patient, clinician, name="methylphenidate", dose="10", start=START.isoformat())
        sweep(patient, 10)  # the baseline's last day is day 7
        assert owed(patient, "stimulant_bp_pulse") == {START.isoformat(): True}
        change_dose(
            prescription=rx, new_dose=Decimal("20"), effective_date=day(20), reason="titration",
            prescriber=clinician, now=at(patient, 19),
        )  # fmt: skip
        bp_and_pulse(patient, 20)
        assert owed(patient, "stimulant_bp_pulse") == {START.isoformat(): True}
        sweep(patient, 30)  # the increase's own baseline was measured: nothing new
        assert owed(patient, "stimulant_bp_pulse") == {START.isoformat(): True}
        assert patient_dues(patient, courses(patient), now=at(patient, 30)) == []


def test_the_owed_again_note_is_in_the_patients_zone(clinic, clinician):
    """A New York patient's week-2 FIBSER, in error, is owed again at noon EDT, not 16:00 UTC."""
    patient = factories.PatientFactory(clinic=clinic, timezone="America/New_York")
    daily_course(patient, clinician, name="sertraline", start=START.isoformat())
    sweep(patient, 36)
    paper = submit_assessment(
        patient=patient, instrument="fibser", answers=[1, 1, 1], source="clinician",
        completed_at=at(patient, 15), now=at(patient, 36, hour=13),
    ).assessment  # fmt: skip
    mark_entered_in_error(record=paper, by=clinician.user, reason="Another patient's form")
    sweep(patient, 37)
    fact = FlagFact.objects.get(flag__patient=patient, key=f"monitor:fibser:{day(14)}")
    assert fact.answered_at is None
    assert fact.answer_note.startswith(f"Owed again on {day(37):%d %b %Y} 12:00 (EDT): ")
