"""Clinical records are never hard-deleted; a wrong record is marked "entered in error"."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests import factories
from tests.helpers_models import (
    make_assessment,
    make_dose_event,
    make_flag,
    make_schedule,
    make_side_effect,
    make_weight,
)
from tracker.models import (
    Assessment,
    ClinicalDeletionError,
    DoseEvent,
    DoseSchedule,
    Flag,
    Patient,
    Prescription,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.services.records import mark_entered_in_error

pytestmark = pytest.mark.django_db


def _make(model, patient):
    if model is Patient:
        return patient
    if model is Prescription:
        return factories.PrescriptionFactory(patient=patient)
    if model is DoseSchedule:
        return make_schedule(factories.PrescriptionFactory(patient=patient))
    if model is DoseEvent:
        return make_dose_event(factories.PrescriptionFactory(patient=patient))
    if model is Assessment:
        return make_assessment(patient)
    if model is SideEffectReport:
        return make_side_effect(patient)
    if model is WeightMeasurement:
        return make_weight(patient)
    if model is Flag:
        return make_flag(patient)
    raise AssertionError(model)


# (model, the name its message uses)
ALL_CLINICAL = [
    (Patient, "Patient"),
    (Prescription, "Prescription"),
    (DoseSchedule, "Dose schedule"),
    (DoseEvent, "Dose event"),
    (Assessment, "Assessment"),
    (SideEffectReport, "Side effect report"),
    (WeightMeasurement, "Weight measurement"),
    (Flag, "Flag"),
]
MARKABLE = [model for model, _ in ALL_CLINICAL if model is not Flag]  # flags are resolved, not marked


def _message(name: str) -> str:
    return f"{name} records are never deleted. Mark the record as entered in error instead."


@pytest.mark.parametrize(("model", "name"), ALL_CLINICAL, ids=[name for _, name in ALL_CLINICAL])
def test_instance_delete_is_refused(patient, model, name):
    record = _make(model, patient)
    with pytest.raises(ClinicalDeletionError) as excinfo:
        record.delete()
    assert str(excinfo.value) == _message(name)
    assert model.objects.filter(pk=record.pk).exists()


@pytest.mark.parametrize(("model", "name"), ALL_CLINICAL, ids=[name for _, name in ALL_CLINICAL])
def test_queryset_delete_is_refused(patient, model, name):
    record = _make(model, patient)
    with pytest.raises(ClinicalDeletionError) as excinfo:
        model.objects.filter(pk=record.pk).delete()
    assert str(excinfo.value) == _message(name)
    with pytest.raises(ClinicalDeletionError):
        model.objects.all().delete()
    assert model.objects.filter(pk=record.pk).exists()


def test_related_manager_delete_is_refused(patient):
    factories.PrescriptionFactory(patient=patient)
    make_flag(patient)
    with pytest.raises(ClinicalDeletionError):
        patient.prescriptions.all().delete()
    with pytest.raises(ClinicalDeletionError):
        patient.flags.all().delete()
    assert patient.prescriptions.count() == 1
    assert patient.flags.count() == 1


@pytest.mark.parametrize("model", MARKABLE, ids=[m.__name__ for m in MARKABLE])
def test_mark_entered_in_error_keeps_the_row_and_records_who_when_why(patient, clinician, model):
    record = _make(model, patient)
    before = timezone.now()
    mark_entered_in_error(record=record, by=clinician.user, reason="  Wrong patient chart  ")
    after = timezone.now()

    stored = model.objects.get(pk=record.pk)
    assert stored.is_entered_in_error
    assert before <= stored.entered_in_error_at <= after
    assert stored.entered_in_error_by == clinician.user
    assert stored.entered_in_error_reason == "Wrong patient chart"


@pytest.mark.parametrize("model", MARKABLE, ids=[m.__name__ for m in MARKABLE])
def test_current_excludes_the_marked_row(patient, clinician, model):
    marked = _make(model, patient)
    kept = _make(model, factories.PatientFactory(clinic=patient.clinic)) if model is Patient else _make(model, patient)
    mark_entered_in_error(record=marked, by=clinician.user, reason="duplicate entry")

    current = set(model.objects.current().values_list("pk", flat=True))
    assert marked.pk not in current
    assert kept.pk in current


@pytest.mark.parametrize("model", MARKABLE, ids=[m.__name__ for m in MARKABLE])
def test_history_keeps_a_row_for_the_marking(patient, clinician, model):
    record = _make(model, patient)
    rows_before = record.history.count()
    mark_entered_in_error(record=record, by=clinician.user, reason="typed into the wrong chart")

    assert record.history.count() == rows_before + 1
    latest = record.history.latest("history_id")
    assert latest.history_type == "~"
    assert latest.entered_in_error_reason == "typed into the wrong chart"
    assert latest.entered_in_error_by_id == clinician.user.pk
    assert latest.history_change_reason == "Entered in error: typed into the wrong chart"
    # The state before the marking is still in the history.
    assert record.history.earliest("history_id").entered_in_error_at is None


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_mark_entered_in_error_refuses_an_empty_reason(patient, clinician, reason):
    record = factories.PrescriptionFactory(patient=patient)
    with pytest.raises(ValidationError) as excinfo:
        mark_entered_in_error(record=record, by=clinician.user, reason=reason)
    assert excinfo.value.message_dict == {"reason": ["Say why the record was entered in error."]}
    record.refresh_from_db()
    assert not record.is_entered_in_error


def test_mark_entered_in_error_refuses_a_second_marking(patient, clinician, other_clinician):
    record = factories.PrescriptionFactory(patient=patient)
    mark_entered_in_error(record=record, by=clinician.user, reason="first reason")
    with pytest.raises(ValidationError) as excinfo:
        mark_entered_in_error(record=record, by=other_clinician.user, reason="second reason")
    assert excinfo.value.messages == ["This record is already marked as entered in error."]
    record.refresh_from_db()
    assert (record.entered_in_error_by, record.entered_in_error_reason) == (clinician.user, "first reason")


def test_second_marking_through_a_stale_copy_is_refused(patient, clinician, other_clinician):
    record = factories.PrescriptionFactory(patient=patient)
    stale = Prescription.objects.get(pk=record.pk)  # e.g. a second browser tab loaded before the first marking
    mark_entered_in_error(record=record, by=clinician.user, reason="first reason")
    with pytest.raises(ValidationError):
        mark_entered_in_error(record=stale, by=other_clinician.user, reason="second reason")
    record.refresh_from_db()
    assert (record.entered_in_error_by, record.entered_in_error_reason) == (clinician.user, "first reason")
