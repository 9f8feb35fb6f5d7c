"""Side-effect sweep (clinical-reference §5): severity, burden, persistence, dose increases,
overdue check-ins, the young-adult PHQ-9 schedule and weight gain on an antipsychotic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from tests.conftest import need_service
from tests.dosing import at, daily_course
from tests.factories import PatientFactory
from tests.symptoms import fibser, phq9, side_effect
from tracker.models import Flag, FlagKind, Severity, SideEffectReport, WeightMeasurement
from tracker.rules import side_effects, symptoms
from tracker.services.flags import resolve_flag
from tracker.services.measurements import record_weight
from tracker.services.prescriptions import change_dose
from tracker.services.records import mark_entered_in_error

pytestmark = pytest.mark.django_db


def flag(kind: str) -> Flag:
    return Flag.objects.get(kind=kind)


def test_severe_side_effect_is_urgent(patient, clinician):
    side_effect(patient, "2026-06-05T09:00", "nausea", "severe")
    side_effects.sweep(now=at("2026-06-05T10:00"))
    severe = flag(FlagKind.SE_SEVERE)
    assert severe.severity == Severity.URGENT
    assert severe.message == "Severe side effect reported on 05 Jun 2026: Feeling sick (nausea) or being sick."


@pytest.mark.parametrize(
    ("burden", "severity"),
    [(2, None), (3, Severity.WARNING), (4, Severity.WARNING), (5, Severity.URGENT), (6, Severity.URGENT)],
)
def test_fibser_burden_bands(patient, burden, severity):
    fibser(patient, "2026-06-05T09:00", burden)
    symptoms.sweep(now=at("2026-06-05T10:00"))  # questionnaires are claimed by the symptom sweep
    found = list(Flag.objects.filter(kind=FlagKind.SE_BURDEN).values_list("severity", flat=True))
    assert found == ([severity] if severity else [])


def test_side_effect_persisting_over_weekly_checkins_is_a_warning(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    for week, day in enumerate(("08", "15", "22", "29")):
        side_effect(patient, f"2026-06-{day}T09:00", "sexual_dysfunction", "moderate")
        side_effects.sweep(now=at(f"2026-06-{day}T10:00"))
        if week < 2:
            assert not Flag.objects.filter(kind=FlagKind.SE_PERSISTENT).exists()
    persistent = flag(FlagKind.SE_PERSISTENT)
    assert persistent.severity == Severity.WARNING
    # One problem per episode while unresolved; each further week folds in and it says the latest.
    assert persistent.message == (
        "Changes in sex drive or sexual function reported as moderate or worse for 3 weeks (since 08 Jun 2026)."
    )
    assert (persistent.occurrences, persistent.raised_at.day) == (2, 22)
    assert Flag.objects.filter(kind=FlagKind.SE_PERSISTENT).count() == 1


def test_mild_reports_do_not_count_as_persistent(patient):
    for day in ("01", "08", "15", "22"):
        side_effect(patient, f"2026-06-{day}T09:00", "headache", "mild")
    side_effects.sweep(now=at("2026-06-22T10:00"))
    assert not Flag.objects.filter(kind=FlagKind.SE_PERSISTENT).exists()


def test_new_side_effect_after_a_dose_increase_names_the_change(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 15),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-14T12:00"),
    )
    side_effect(patient, "2026-06-20T09:00", "insomnia", "moderate", onset_date=dt.date(2026, 6, 18))
    side_effects.sweep(now=at("2026-06-20T10:00"))
    assert flag(FlagKind.SE_AFTER_DOSE_INCREASE).message == (
        "New side effect (Trouble sleeping) from 18 Jun 2026, within two weeks of Sertraline going up from "
        "50 to 100 mg on 15 Jun 2026."
    )


def test_effect_present_before_the_increase_is_not_new(patient, clinician):
    rx = daily_course(patient, clinician, start="2026-06-01")
    side_effect(patient, "2026-06-08T09:00", "insomnia", "mild")
    change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 15),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-14T12:00"),
    )
    side_effect(patient, "2026-06-20T09:00", "insomnia", "moderate")
    side_effects.sweep(now=at("2026-06-20T10:00"))
    assert not Flag.objects.filter(kind=FlagKind.SE_AFTER_DOSE_INCREASE).exists()


def test_overdue_weekly_checkin_is_info(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    fibser(patient, "2026-06-05T09:00", 1)
    side_effects.sweep(now=at("2026-06-14T10:00"))  # due 12 June, 2 days' grace: not yet overdue
    assert not Flag.objects.filter(kind=FlagKind.SE_CHECKIN_OVERDUE).exists()
    side_effects.sweep(now=at("2026-06-15T10:00"))
    overdue = flag(FlagKind.SE_CHECKIN_OVERDUE)
    assert overdue.severity == Severity.INFO
    assert overdue.message == "Weekly side-effect check-in due on 12 Jun 2026 has not been done."


def test_young_adult_on_an_antidepressant_missing_weekly_phq9_is_a_warning(clinic, clinician):
    young = PatientFactory(clinic=clinic, date_of_birth=dt.date(2004, 1, 1))  # 22 at the start
    daily_course(young, clinician, start="2026-06-01")
    phq9(young, "2026-06-08T09:00", 12)  # week 1 done; week 2 (15 June) missed
    side_effects.sweep(now=at("2026-06-17T10:00"))
    assert not Flag.objects.filter(kind=FlagKind.SE_YOUNG_ADULT_MONITORING_OVERDUE).exists()
    side_effects.sweep(now=at("2026-06-18T10:00"))
    overdue = flag(FlagKind.SE_YOUNG_ADULT_MONITORING_OVERDUE)
    assert overdue.severity == Severity.WARNING
    assert overdue.message.startswith("PHQ-9 due on 15 Jun 2026 is more than 2 days overdue for a patient under 25")


def test_older_adult_gets_no_young_adult_flag(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")  # born 1985
    side_effects.sweep(now=at("2026-06-18T10:00"))
    assert not Flag.objects.filter(kind=FlagKind.SE_YOUNG_ADULT_MONITORING_OVERDUE).exists()


def test_sweep_run_twice_raises_nothing_new(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")
    side_effect(patient, "2026-06-05T09:00", "nausea", "severe")
    first = side_effects.sweep(now=at("2026-06-15T10:00"))
    second = side_effects.sweep(now=at("2026-06-15T10:00"))
    assert first.flags_raised == 2  # severe effect and overdue check-in
    assert (second.examined, second.flags_raised) == (0, 0)


# --- Weight gain on an antipsychotic (§0 se.metabolic_weight, §5 antipsychotic_metabolic) ----------


def weigh(patient, when: str, kg: str) -> WeightMeasurement:
    return record_weight(patient=patient, weight_kg=Decimal(kg), measured_at=at(when), recorded_by=None, now=at(when))


def antipsychotic(patient, clinician, start="2026-06-01"):
    return daily_course(patient, clinician, name="aripiprazole", dose="5", start=start)


def weight_flags() -> list[Flag]:
    return list(Flag.objects.filter(kind=FlagKind.SE_METABOLIC_WEIGHT))


def test_weight_gain_below_the_threshold_raises_nothing(patient, clinician):
    antipsychotic(patient, clinician)
    weigh(patient, "2026-05-30T09:00", "80.0")
    weigh(patient, "2026-06-29T09:00", "83.9")  # +4.9 %
    side_effects.sweep(now=at("2026-06-30T10:00"))
    assert weight_flags() == []


def test_weight_gain_at_the_threshold_is_a_warning_with_the_numbers(patient, clinician):
    antipsychotic(patient, clinician)
    weigh(patient, "2026-05-20T09:00", "79.0")
    weigh(patient, "2026-05-30T09:00", "80.0")  # baseline: the latest up to the start
    weigh(patient, "2026-06-15T09:00", "82.0")
    latest = weigh(patient, "2026-06-29T09:00", "84.0")  # +5.0 %
    side_effects.sweep(now=at("2026-06-30T10:00"))
    (flag,) = weight_flags()
    assert flag.severity == Severity.WARNING
    assert flag.message == (
        "Weight up 5.0 % on Aripiprazole (started 01 Jun 2026): 80.0 kg at baseline on 30 May 2026, "
        "84.0 kg on 29 Jun 2026 (review from a 5 % gain)."
    )
    assert flag.action.startswith("Review weight, glucose and lipids with the patient; consider the options")
    assert "such as switching" in flag.action
    # What §5 asks for next on this course (started 1 Jun): weight at week 8, BP/glucose and lipids at week 12.
    assert flag.action.endswith(
        "Due next (§5): weight on 27 Jul 2026; blood pressure and fasting glucose on 24 Aug 2026; "
        "lipid panel on 24 Aug 2026."
    ), flag.action
    assert (flag.subject, flag.raised_at) == (latest, at("2026-06-29T09:00"))
    assert flag.dedup_key == f"se.metabolic_weight:patient:{patient.pk}:start:2026-06-01"


def test_the_threshold_follows_the_clinic_override(settings, patient, clinician):
    settings.TRACKER_CLINICAL_OVERRIDES = {"METABOLIC_WEIGHT_GAIN_PERCENT": 7.5}
    antipsychotic(patient, clinician)
    weigh(patient, "2026-05-30T09:00", "80.0")
    weigh(patient, "2026-06-29T09:00", "85.6")  # +7.0 %
    side_effects.sweep(now=at("2026-06-30T10:00"))
    assert weight_flags() == []
    weigh(patient, "2026-06-30T09:00", "86.0")  # +7.5 %
    side_effects.sweep(now=at("2026-06-30T10:00"))
    (flag,) = weight_flags()
    assert flag.message.endswith("(review from a 7.5 % gain).")


def test_weight_gain_on_an_antidepressant_only_raises_nothing(patient, clinician):
    daily_course(patient, clinician, start="2026-06-01")  # sertraline
    weigh(patient, "2026-05-30T09:00", "80.0")
    weigh(patient, "2026-06-29T09:00", "90.0")
    side_effects.sweep(now=at("2026-06-30T10:00"))
    assert weight_flags() == []


def test_weight_flag_is_raised_once_per_course_even_after_it_is_resolved(patient, clinician):
    antipsychotic(patient, clinician)
    weigh(patient, "2026-05-30T09:00", "80.0")
    weigh(patient, "2026-06-29T09:00", "84.4")
    side_effects.sweep(now=at("2026-06-30T10:00"))
    side_effects.sweep(now=at("2026-06-30T10:05"))
    (flag,) = weight_flags()
    resolve_flag(flag=flag, by=clinician.user, note="Discussed diet; lipids ordered")
    weigh(patient, "2026-07-13T09:00", "86.0")
    side_effects.sweep(now=at("2026-07-14T10:00"))
    assert len(weight_flags()) == 1


def test_a_baseline_shortly_after_the_start_counts_but_not_later(clinic, clinician):
    early, late = (PatientFactory(clinic=clinic, record_number=n) for n in ("W-1", "W-2"))
    for person, first_day in ((early, "2026-06-08"), (late, "2026-06-09")):  # start + 7 days, + 8 days
        antipsychotic(person, clinician)
        weigh(person, f"{first_day}T09:00", "80.0")
        weigh(person, "2026-07-06T09:00", "85.0")
    side_effects.sweep(now=at("2026-07-07T10:00"))
    assert [f.patient for f in weight_flags()] == [early]


def test_a_weight_from_long_before_the_course_is_no_baseline(patient, clinician):
    antipsychotic(patient, clinician)
    weigh(patient, "2026-03-01T09:00", "80.0")  # 92 days before the start
    weigh(patient, "2026-06-29T09:00", "86.0")
    side_effects.sweep(now=at("2026-06-30T10:00"))
    assert weight_flags() == []


def test_weights_in_error_and_weights_after_the_judged_instant_do_not_count(patient, clinician):
    antipsychotic(patient, clinician)
    weigh(patient, "2026-05-30T09:00", "80.0")
    wrong = weigh(patient, "2026-06-15T09:00", "88.0")
    mark_entered_in_error(record=wrong, by=clinician.user, reason="Another patient's reading")
    weigh(patient, "2026-06-29T09:00", "84.0")
    side_effects.sweep(now=at("2026-06-20T10:00"))  # replaying a moment before the gain was measured
    assert weight_flags() == []
    side_effects.sweep(now=at("2026-06-30T10:00"))
    (flag,) = weight_flags()
    assert "84.0 kg on 29 Jun 2026" in flag.message


@pytest.mark.parametrize("patients", [5, 40])
def test_sweep_query_count_does_not_grow_with_patients(patients, clinic, clinician, django_assert_num_queries):
    need_service(connection.vendor == "postgresql", "the query-count shape is asserted on PostgreSQL")
    on_antipsychotic = range(0, patients, 2)
    for i in range(patients):
        person = PatientFactory(clinic=clinic, record_number=f"E{patients}-{i}")
        if i in on_antipsychotic:
            antipsychotic(person, clinician)
            weigh(person, "2026-05-30T09:00", "80.0")
            weigh(person, "2026-06-12T09:00", "84.5")
        else:
            daily_course(person, clinician, start="2026-06-01")
        side_effect(person, "2026-06-05T09:00", "nausea", "severe")
    for model in (SideEffectReport, WeightMeasurement):
        ContentType.objects.get_for_model(model)  # cached per process, as in a worker
    # Storing flags (store_flags) is 6: SAVEPOINT, lock the open problems of these keys,
    # INSERT the new ones, INSERT their facts, their history rows, RELEASE.
    # New reports: SAVEPOINT; claim; reports; patients; report history; courses; existing keys;
    # storing; RELEASE (no episode flags, so no second store).
    # Monitoring, one chunk: patient ids; patients; courses; scores; weights of the patients on
    # an antipsychotic (none asked for a chunk without one); existing keys; storing; the empty
    # next chunk.
    with django_assert_num_queries(27):
        result = side_effects.sweep(now=at("2026-06-15T10:00"))
    assert result.examined == patients
    assert Flag.objects.filter(kind=FlagKind.SE_SEVERE).count() == patients
    assert len(weight_flags()) == len(on_antipsychotic)


# --- ASEX positive screen (§5) -> se.sexual_dysfunction ---------------------------------------


def asex(patient, when: str, answers: list[int]):
    from tracker.services.assessments import submit_assessment

    return submit_assessment(
        patient=patient, instrument="asex", answers=answers, source="patient", completed_at=at(when), now=at(when)
    ).assessment


@pytest.mark.parametrize(
    ("answers", "flagged"),
    [
        ([4, 4, 3, 3, 3], False),  # total 17, highest 4, two at 4: negative
        ([5, 1, 1, 1, 1], True),  # any item >= 5
        ([4, 4, 4, 1, 1], True),  # three items >= 4
        ([4, 4, 4, 4, 3], True),  # total 19
    ],
)
def test_positive_asex_screen_raises_one_warning(patient, answers, flagged):
    response = asex(patient, "2026-06-05T09:00", answers)
    symptoms.sweep(now=at("2026-06-05T10:00"))  # questionnaires are claimed by the symptom sweep
    symptoms.sweep(now=at("2026-06-05T11:00"))  # a second run raises nothing more
    flags = list(Flag.objects.filter(kind=FlagKind.SE_SEXUAL_DYSFUNCTION))
    assert len(flags) == (1 if flagged else 0)
    if flagged:
        assert flags[0].severity == Severity.WARNING
        assert flags[0].subject_id == response.pk
        assert flags[0].message.startswith(f"ASEX screen positive for sexual dysfunction: total {sum(answers)}")


def test_asex_flag_names_the_items_at_four_or_more(patient):
    asex(patient, "2026-06-05T09:00", [4, 2, 4, 6, 1])
    symptoms.sweep(now=at("2026-06-05T10:00"))
    flag = Flag.objects.get(kind=FlagKind.SE_SEXUAL_DYSFUNCTION)
    assert flag.message == (
        "ASEX screen positive for sexual dysfunction: total 17 (5–30, higher is worse); "
        "drive 4, erection/lubrication 4, orgasm 6 of 6."
    )
