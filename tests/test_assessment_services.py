"""Submitting questionnaires and side effects: validation, and the same-transaction suicidality flag."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from tests.dosing import at
from tests.symptoms import answers_for, phq9
from tracker.models import Assessment, Flag, FlagKind, Severity, SideEffectReport
from tracker.services.assessments import EffectReport, report_side_effects, submit_assessment, submit_checkin

pytestmark = pytest.mark.django_db


def test_phq9_item9_above_zero_raises_an_urgent_flag_in_the_same_transaction(patient):
    with transaction.atomic():
        submitted = submit_assessment(
            patient=patient,
            instrument="phq9",
            answers=answers_for(14, item9=1),
            source="patient",
            now=at("2026-06-10T09:00"),
        )
        # Inside the transaction that stored the answers, the flag already exists.
        flag = Flag.objects.get(kind=FlagKind.SCALE_SUICIDALITY)
    assert submitted.suicidality_flagged
    assert flag.severity == Severity.URGENT
    assert flag.subject == submitted.assessment
    assert flag.message == (
        'PHQ-9 question 9 (thoughts of being better off dead or of self-harm) answered "Several days" '
        "on 10 Jun 2026; total 14."
    )


def test_a_failed_save_leaves_neither_answers_nor_flag(patient):
    with pytest.raises(RuntimeError), transaction.atomic():
        submit_assessment(patient=patient, instrument="phq9", answers=answers_for(20, item9=3), source="patient")
        raise RuntimeError("the request failed after the service returned")
    assert not Assessment.objects.exists()
    assert not Flag.objects.exists()


def test_phq9_item9_zero_raises_nothing(patient):
    submitted = submit_assessment(patient=patient, instrument="phq9", answers=answers_for(22), source="patient")
    assert not submitted.suicidality_flagged
    assert not Flag.objects.exists()


def test_out_of_range_answer_names_the_question(patient):
    answers = answers_for(10)
    answers[3] = 4
    with pytest.raises(ValidationError) as error:
        submit_assessment(patient=patient, instrument="phq9", answers=answers, source="patient")
    assert error.value.message_dict["answers"] == ["PHQ-9 question 4 must be between 0 and 3; 4 is out of range."]


def test_patients_cannot_submit_a_clinician_rated_scale(patient):
    with pytest.raises(ValidationError) as error:
        submit_assessment(patient=patient, instrument="madrs", answers=[0] * 10, source="patient")
    assert error.value.message_dict["instrument"] == ["MADRS is rated by a clinician."]


def test_total_and_band_are_computed_on_save(patient):
    assessment = phq9(patient, "2026-06-01T09:00", 15)
    assert (assessment.total, assessment.band) == (15, "moderately severe")


def test_checkin_stores_fibser_and_the_effects_together(patient):
    assessment, reports = submit_checkin(
        patient=patient,
        fibser_answers=[2, 3, 4],
        effects=[EffectReport("nausea", "mild"), EffectReport("other", "moderate", description="Vivid dreams")],
        now=at("2026-06-08T18:00"),
    )
    assert (assessment.instrument, assessment.band) == ("fibser", "burden moderate")
    assert [r.checkin_id for r in reports] == [assessment.pk, assessment.pk]
    assert SideEffectReport.objects.get(effect="other").description == "Vivid dreams"


def test_other_side_effect_needs_a_description(patient):
    with pytest.raises(ValidationError) as error:
        report_side_effects(patient=patient, effects=[EffectReport("other", "mild")])
    assert error.value.message_dict["description"] == ["Please describe the side effect in your own words."]


def test_unknown_side_effect_is_refused(patient):
    with pytest.raises(ValidationError) as error:
        report_side_effects(patient=patient, effects=[EffectReport("telepathy", "mild")])
    assert "Choose a side effect from the list" in error.value.message_dict["effect"][0]


def test_side_effect_on_another_patients_medicine_is_refused(patient, other_patient):
    from tests.factories import PrescriptionFactory

    theirs = PrescriptionFactory(patient=other_patient)
    with pytest.raises(ValidationError) as error:
        report_side_effects(patient=patient, effects=[EffectReport("nausea", "mild", prescription_id=theirs.pk)])
    assert error.value.message_dict["prescription"] == ["That medicine is not one of yours."]
