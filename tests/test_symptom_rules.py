"""Symptom sweep (clinical-reference §4): worsening, response, remission, not improving."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from tests.conftest import need_service
from tests.dosing import at, daily_course
from tests.factories import PatientFactory
from tests.symptoms import phq9
from tracker.models import Assessment, Flag, FlagKind, Severity
from tracker.rules import symptoms
from tracker.services.flags import resolve_flag
from tracker.services.prescriptions import change_dose

pytestmark = pytest.mark.django_db


def kinds() -> list[str]:
    return sorted(Flag.objects.values_list("kind", flat=True))


def test_rise_of_five_from_baseline_is_worsening(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 12)  # baseline: before the course started
    phq9(patient, "2026-06-08T09:00", 17)
    symptoms.sweep(now=at("2026-06-08T10:00"))
    flag = Flag.objects.get(kind=FlagKind.SCALE_WORSENING)
    assert flag.severity == Severity.WARNING
    assert flag.message == "PHQ-9 17 on 08 Jun 2026: up 5 points from the baseline of 12."


def test_rise_of_four_is_not_worsening(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 12)
    phq9(patient, "2026-06-08T09:00", 16)
    symptoms.sweep(now=at("2026-06-08T10:00"))
    assert kinds() == []


def test_rise_from_previous_score_is_worsening(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 16)
    phq9(patient, "2026-06-08T09:00", 8)
    phq9(patient, "2026-06-15T09:00", 14)
    symptoms.sweep(now=at("2026-06-15T10:00"))
    flag = Flag.objects.get(kind=FlagKind.SCALE_WORSENING)
    assert flag.message == "PHQ-9 14 on 15 Jun 2026: up 6 points from the previous score of 8."


def test_entering_the_severe_band_without_a_rise_of_five_is_not_worsening(patient, clinician):
    # §4 defines worsening as a rise of ≥ 5 points only: 18 -> 20, or a severe first score, is not one.
    phq9(patient, "2026-06-01T09:00", 22)
    phq9(patient, "2026-06-08T09:00", 18)
    phq9(patient, "2026-06-15T09:00", 20)
    symptoms.sweep(now=at("2026-06-15T10:00"))
    assert kinds() == []


def test_worsening_into_the_severe_band_is_urgent_and_says_so(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 12)
    phq9(patient, "2026-06-08T09:00", 20)
    symptoms.sweep(now=at("2026-06-08T10:00"))
    flag = Flag.objects.get()
    assert (flag.kind, flag.severity) == (FlagKind.SCALE_WORSENING_SEVERE, Severity.URGENT)
    assert flag.title == "PHQ-9 20 (severe), +8 from baseline"
    assert flag.message == "PHQ-9 20 on 08 Jun 2026: up 8 points from the baseline of 12. Now in the severe band."


def test_severe_worsening_is_a_warning_when_the_clinic_sets_it_so(patient, clinician, settings):
    settings.TRACKER_CLINICAL_OVERRIDES = {"WORSENING_SEVERE_BAND_SEVERITY": Severity.WARNING}
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 12)
    phq9(patient, "2026-06-08T09:00", 20)
    symptoms.sweep(now=at("2026-06-08T10:00"))
    assert Flag.objects.get().severity == Severity.WARNING


def test_successive_worsening_scores_fold_into_one_problem_that_carries_the_latest(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 10)
    for day, total in (("08", 15), ("15", 16), ("22", 21)):
        phq9(patient, f"2026-06-{day}T09:00", total)
        symptoms.sweep(now=at(f"2026-06-{day}T10:00"))
    (flag,) = Flag.objects.filter(kind__startswith="scale.worsening")
    assert flag.title == "PHQ-9 21 (severe), +11 from baseline"
    assert (flag.kind, flag.severity, flag.occurrences) == (FlagKind.SCALE_WORSENING_SEVERE, Severity.URGENT, 3)
    assert flag.raised_at == at("2026-06-08T09:00")
    assert [f.subject.total for f in flag.facts.all()] == [15, 16, 21]
    assert flag.history.latest().history_change_reason == "Severity raised by the tracker"


def test_response_and_remission_are_info_milestones_raised_once(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 18)
    phq9(patient, "2026-06-29T09:00", 9)  # 50 % lower: response
    symptoms.sweep(now=at("2026-06-29T10:00"))
    assert kinds() == [FlagKind.SCALE_RESPONSE]
    phq9(patient, "2026-07-06T09:00", 4)  # below 5: remission; response already flagged
    symptoms.sweep(now=at("2026-07-06T10:00"))
    assert kinds() == [FlagKind.SCALE_REMISSION, FlagKind.SCALE_RESPONSE]
    remission = Flag.objects.get(kind=FlagKind.SCALE_REMISSION)
    assert remission.severity == Severity.INFO
    assert remission.message == "PHQ-9 remission on Sertraline: 4 on 06 Jul 2026 (baseline 18)."


def test_resolved_milestone_is_not_raised_again(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 18)
    phq9(patient, "2026-06-29T09:00", 8)
    symptoms.sweep(now=at("2026-06-29T10:00"))
    resolve_flag(flag=Flag.objects.get(kind=FlagKind.SCALE_RESPONSE), by=clinician.user, note="Seen")
    phq9(patient, "2026-07-06T09:00", 7)
    symptoms.sweep(now=at("2026-07-06T10:00"))
    assert Flag.objects.filter(kind=FlagKind.SCALE_RESPONSE).count() == 1


def test_not_improving_by_day_28_at_an_adequate_dose(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")  # sertraline 50 mg: the usual minimum
    phq9(patient, "2026-05-30T09:00", 18)
    phq9(patient, "2026-06-26T09:00", 16)  # 11 % better
    symptoms.sweep(now=at("2026-06-29T10:00"))
    flag = Flag.objects.get(kind=FlagKind.SCALE_NOT_IMPROVING)
    assert flag.message == (
        "PHQ-9 16 after 28 days on Sertraline 50 mg a day (baseline 18): 11% better, below the 20% expected by day 28."
    )
    assert flag.action.startswith("Consider a change of treatment")


def test_not_improving_waits_for_a_stable_dose_after_a_change(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 18)
    change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 20),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-19T12:00"),
    )
    phq9(patient, "2026-06-26T09:00", 17)
    symptoms.sweep(now=at("2026-06-29T10:00"))  # day 9 at 100 mg: too early to judge
    assert not Flag.objects.filter(kind=FlagKind.SCALE_NOT_IMPROVING).exists()


def test_below_the_usual_dose_is_not_judged_as_non_response(patient, clinician):
    daily_course(patient, clinician, dose="25", start="2026-06-01")  # below sertraline's usual 50 mg
    phq9(patient, "2026-05-30T09:00", 18)
    phq9(patient, "2026-06-26T09:00", 18)
    symptoms.sweep(now=at("2026-06-29T10:00"))
    assert not Flag.objects.filter(kind=FlagKind.SCALE_NOT_IMPROVING).exists()


def test_sweep_run_twice_raises_nothing_new(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 18)
    phq9(patient, "2026-06-26T09:00", 24)
    first = symptoms.sweep(now=at("2026-06-29T10:00"))
    second = symptoms.sweep(now=at("2026-06-29T10:00"))
    assert first.flags_raised == 2  # worsening and not improving
    assert (second.examined, second.flags_raised) == (0, 0)


def test_a_later_good_score_does_not_close_a_worsening_flag(patient, clinician):
    phq9(patient, "2026-06-01T09:00", 8)
    phq9(patient, "2026-06-08T09:00", 14)
    symptoms.sweep(now=at("2026-06-08T10:00"))
    phq9(patient, "2026-06-15T09:00", 3)
    symptoms.sweep(now=at("2026-06-15T10:00"))
    assert Flag.objects.get(kind=FlagKind.SCALE_WORSENING).status == Flag.Status.OPEN


@pytest.mark.parametrize("patients", [5, 40])
def test_sweep_query_count_does_not_grow_with_patients(patients, clinic, clinician, django_assert_num_queries):
    need_service(connection.vendor == "postgresql", "the query-count shape is asserted on PostgreSQL")
    for i in range(patients):
        person = PatientFactory(clinic=clinic, record_number=f"S{patients}-{i}")
        daily_course(person, clinician, start="2026-06-01")
        phq9(person, "2026-05-30T09:00", 18)
        phq9(person, "2026-06-26T09:00", 17)
    for model in (Assessment,):
        ContentType.objects.get_for_model(model)  # cached per process, as in a worker
    # New scores (none flag here): SAVEPOINT; claim; claimed rows; patients; scores; courses;
    # RELEASE. Checkpoints, one chunk: patient ids; patients; courses; scores; existing keys;
    # SAVEPOINT, lock open problems, INSERT flags, INSERT facts, history rows, RELEASE; then
    # the empty next chunk.
    with django_assert_num_queries(19):
        result = symptoms.sweep(now=at("2026-06-29T10:00"))
    assert result.examined == 2 * patients
    assert Flag.objects.filter(kind=FlagKind.SCALE_NOT_IMPROVING).count() == patients


def test_adequacy_is_judged_on_the_daily_total_not_one_dose(patient, clinician):
    # Bupropion 150 mg twice a day is 300 mg/day: the lower bound of its usual range (§6).
    daily_course(patient, clinician, name="bupropion", dose="150", times=("08:00", "14:00"), start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 18)
    phq9(patient, "2026-06-26T09:00", 17)
    symptoms.sweep(now=at("2026-06-29T10:00"))
    flag = Flag.objects.get(kind=FlagKind.SCALE_NOT_IMPROVING)
    assert "Bupropion 300 mg a day" in flag.message


def test_a_severe_first_score_on_a_course_is_not_worsening(patient, clinician):
    # Issue 18: the course's baseline is severe; there is nothing earlier to be worse than.
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 23)
    symptoms.sweep(now=at("2026-05-30T10:00"))
    phq9(patient, "2026-06-08T09:00", 22)  # still severe, not up by 5
    symptoms.sweep(now=at("2026-06-08T10:00"))
    assert not Flag.objects.filter(kind__startswith="scale.worsening").exists()


def test_both_of_the_references_worsening_triggers_raise_it_at_their_edges(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    phq9(patient, "2026-05-30T09:00", 6)  # baseline
    phq9(patient, "2026-06-08T09:00", 10)  # +4 from baseline: not yet
    symptoms.sweep(now=at("2026-06-08T10:00"))
    assert not Flag.objects.exists()
    phq9(patient, "2026-06-15T09:00", 11)  # +5 from baseline (and +1 from the previous)
    symptoms.sweep(now=at("2026-06-15T10:00"))
    assert Flag.objects.get().message == "PHQ-9 11 on 15 Jun 2026: up 5 points from the baseline of 6."


def test_gad7_and_madrs_halving_is_not_flagged_as_response(patient, clinician):
    # §4 outcome definitions are PHQ-9's unless noted; response is not noted for GAD-7 or MADRS.
    from tests.test_exports import gad7

    daily_course(patient, clinician, start="2026-06-01")
    gad7(patient, "2026-05-30T09:00", [2] * 7)  # 14
    gad7(patient, "2026-06-29T09:00", [1] * 6 + [0])  # 6: 57 % lower
    symptoms.sweep(now=at("2026-06-29T10:00"))
    assert not Flag.objects.filter(kind=FlagKind.SCALE_RESPONSE).exists()
