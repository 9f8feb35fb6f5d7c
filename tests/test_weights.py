"""Weight measurements: the model's plausible range and the service that keeps the current weight."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.dosing import at
from tests.helpers_models import make_weight, violates
from tracker.models import WeightMeasurement
from tracker.services.measurements import record_weight
from tracker.services.records import mark_entered_in_error

pytestmark = pytest.mark.django_db

RANGE_MESSAGE = "Weight must be between 10 and 400 kg. Check the number, and that it is in kilograms."


def weigh(patient, when: str, kg: str, by=None, **kwargs) -> WeightMeasurement:
    return record_weight(
        patient=patient, weight_kg=Decimal(kg), measured_at=at(when), recorded_by=by, now=at(when), **kwargs
    )


# --- The model ------------------------------------------------------------------------------


@pytest.mark.parametrize("kg", ["0", "-70.0", "9.9", "400.1", "7250.0"])
def test_constraint_refuses_an_implausible_weight(patient, kg):
    with violates("tracker_weight_in_range"):
        make_weight(patient, weight_kg=Decimal(kg))


@pytest.mark.parametrize("kg", ["10.0", "72.5", "400.0"])
def test_constraint_accepts_the_plausible_range_edges(patient, kg):
    assert make_weight(patient, weight_kg=Decimal(kg)).weight_kg == Decimal(kg)


def test_constraint_checked_on_update(patient):
    weight = make_weight(patient)
    with violates("tracker_weight_in_range"):
        WeightMeasurement.objects.filter(pk=weight.pk).update(weight_kg=Decimal("0"))


@pytest.mark.parametrize("kg", ["9.9", "400.1"])
def test_full_clean_says_the_range_in_plain_words_beside_the_field(patient, kg):
    weight = WeightMeasurement(patient=patient, measured_at=at("2026-06-01T09:00"), weight_kg=Decimal(kg))
    with pytest.raises(ValidationError) as excinfo:
        weight.full_clean()
    assert excinfo.value.message_dict == {"weight_kg": [RANGE_MESSAGE]}


def test_constraint_message_is_the_same_plain_words(patient):
    (constraint,) = WeightMeasurement._meta.constraints
    assert constraint.violation_error_message == RANGE_MESSAGE


# --- The service ----------------------------------------------------------------------------


def test_recording_a_weight_updates_the_current_weight_and_both_histories(patient, clinician):
    weight = weigh(patient, "2026-06-01T09:00", "72.4", by=clinician.user, note="  After breakfast ")
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("72.4")
    assert (weight.recorded_by, weight.note, weight.measured_at) == (
        clinician.user,
        "After breakfast",
        at("2026-06-01T09:00"),
    )
    created = weight.history.get()
    assert created.history_type == "+" and created.weight_kg == Decimal("72.4")
    latest = patient.history.latest("history_id")
    assert latest.weight_kg == Decimal("72.4")
    assert latest.history_change_reason == "Current weight from the measurement of 2026-06-01 09:00 UTC"


def test_the_callers_patient_copy_is_updated_too(patient):
    weigh(patient, "2026-06-01T09:00", "72.4")
    assert patient.weight_kg == Decimal("72.4")


def test_a_back_dated_weight_does_not_replace_a_newer_one(patient):
    weigh(patient, "2026-06-08T09:00", "74.0")
    record_weight(
        patient=patient,
        weight_kg=Decimal("71.0"),
        measured_at=at("2026-06-01T09:00"),
        recorded_by=None,
        now=at("2026-06-09T09:00"),
    )
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("74.0")
    assert WeightMeasurement.objects.filter(patient=patient).count() == 2


def test_an_implausible_weight_is_refused_and_nothing_changes(patient):
    weigh(patient, "2026-06-01T09:00", "72.4")
    with pytest.raises(ValidationError) as excinfo:
        weigh(patient, "2026-06-02T09:00", "724")
    assert excinfo.value.message_dict == {"weight_kg": [RANGE_MESSAGE]}
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("72.4")
    assert WeightMeasurement.objects.count() == 1


def test_a_weight_in_the_future_is_refused(patient):
    with pytest.raises(ValidationError) as excinfo:
        record_weight(
            patient=patient,
            weight_kg=Decimal("70"),
            measured_at=at("2026-06-02T09:00"),
            recorded_by=None,
            now=at("2026-06-01T09:00"),
        )
    assert excinfo.value.message_dict == {"measured_at": ["That time is in the future."]}
    assert not WeightMeasurement.objects.exists()


def test_latest_weight_in_error_hands_back_to_the_one_before(patient, clinician):
    weigh(patient, "2026-06-01T09:00", "72.4")
    wrong = weigh(patient, "2026-06-08T09:00", "27.4")
    mark_entered_in_error(record=wrong, by=clinician.user, reason="Digits swapped")
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("72.4")


def test_only_weight_in_error_clears_the_current_weight(patient, clinician):
    wrong = weigh(patient, "2026-06-01T09:00", "27.4")
    mark_entered_in_error(record=wrong, by=clinician.user, reason="Wrong patient")
    patient.refresh_from_db()
    assert patient.weight_kg is None  # IV ketamine now asks for a weight instead of dosing on a wrong one
    assert patient.history.latest("history_id").history_change_reason == (
        "Current weight cleared: its measurement was entered in error"
    )


def test_older_weight_in_error_leaves_the_current_weight(patient, clinician):
    older = weigh(patient, "2026-06-01T09:00", "72.4")
    weigh(patient, "2026-06-08T09:00", "73.0")
    rows = patient.history.count()
    mark_entered_in_error(record=older, by=clinician.user, reason="Duplicate")
    patient.refresh_from_db()
    assert patient.weight_kg == Decimal("73.0")
    assert patient.history.count() == rows  # nothing changed, nothing written
