"""Every database constraint fires in the database itself, not only in clean().

Rows are written with ``objects.create`` / ``bulk_create`` / ``update()``, which skip
``full_clean()``, so only the constraint can stop them. Each test also writes the nearest
valid row, so a constraint that refused everything would fail too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests import factories
from tests.helpers_models import (
    DUE_AT,
    make_assessment,
    make_dose_event,
    make_flag,
    make_planned_dose,
    make_schedule,
    make_side_effect,
    violates,
)
from tracker.models import (
    Assessment,
    Clinician,
    DoseEvent,
    DoseSchedule,
    Drug,
    Flag,
    Patient,
    PlannedDose,
    Prescription,
)

pytestmark = pytest.mark.django_db

START = dt.date(2025, 3, 3)


def _drug_values(**overrides):
    values = {
        "name": "testdrug",
        "display_name": "Testdrug",
        "drug_class": "ssri",
        "routes": ["oral"],
        "usual_min": Decimal("10"),
        "usual_max": Decimal("20"),
        "maximum": Decimal("40"),
    }
    values.update(overrides)
    return values


# --- Patient ---------------------------------------------------------------------------


def test_record_number_unique_within_a_clinic(clinic):
    factories.PatientFactory(clinic=clinic, record_number="MRN-1")
    with violates(
        "tracker_patient_record_number_unique_per_clinic",
        sqlite="UNIQUE constraint failed: tracker_patient.clinic_id, tracker_patient.record_number",
    ):
        Patient.objects.create(
            clinic=clinic, record_number="MRN-1", given_name="A", family_name="B", date_of_birth=START
        )
    assert Patient.objects.filter(clinic=clinic, record_number="MRN-1").count() == 1


def test_same_record_number_in_two_clinics_is_allowed(clinic, other_clinic):
    factories.PatientFactory(clinic=clinic, record_number="MRN-1")
    factories.PatientFactory(clinic=other_clinic, record_number="MRN-1")
    assert Patient.objects.filter(record_number="MRN-1").count() == 2


def test_record_number_unique_also_on_update(clinic):
    factories.PatientFactory(clinic=clinic, record_number="MRN-1")
    second = factories.PatientFactory(clinic=clinic, record_number="MRN-2")
    with violates(
        "tracker_patient_record_number_unique_per_clinic",
        sqlite="UNIQUE constraint failed: tracker_patient.clinic_id, tracker_patient.record_number",
    ):
        Patient.objects.filter(pk=second.pk).update(record_number="MRN-1")


@pytest.mark.parametrize("weight", [Decimal("0"), Decimal("-70.0")])
def test_patient_weight_must_be_positive(clinic, weight):
    with violates("tracker_patient_weight_positive"):
        factories.PatientFactory(clinic=clinic, weight_kg=weight)


def test_patient_weight_may_be_blank_or_positive(clinic):
    assert factories.PatientFactory(clinic=clinic, weight_kg=None).weight_kg is None
    assert factories.PatientFactory(clinic=clinic, weight_kg=Decimal("0.1")).weight_kg == Decimal("0.1")


def test_patient_weight_checked_on_update(patient):
    with violates("tracker_patient_weight_positive"):
        Patient.objects.filter(pk=patient.pk).update(weight_kg=Decimal("0"))


# --- Clinician -------------------------------------------------------------------------


def test_clinician_role_must_be_a_known_role(clinic):
    user = factories.UserFactory(username="role-test")
    with violates("tracker_clinician_role_valid"):
        Clinician.objects.create(user=user, clinic=clinic, role="surgeon")
    assert Clinician.objects.create(user=user, clinic=clinic, role="nurse").role == "nurse"


# --- Drug ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usual_min", "usual_max"),
    [("0", "20"), ("-5", "20"), ("30", "20")],
    ids=["zero-min", "negative-min", "max-below-min"],
)
def test_drug_usual_range_must_be_positive_and_ordered(usual_min, usual_max):
    with violates("tracker_drug_usual_range_valid"):
        Drug.objects.create(**_drug_values(usual_min=Decimal(usual_min), usual_max=Decimal(usual_max)))


def test_drug_usual_range_may_be_a_single_value():
    drug = Drug.objects.create(**_drug_values(usual_min=Decimal("20"), usual_max=Decimal("20")))
    assert drug.usual_min == drug.usual_max


def test_drug_maximum_not_below_usual_max():
    with violates("tracker_drug_maximum_not_below_usual"):
        Drug.objects.create(**_drug_values(maximum=Decimal("19.99")))


def test_drug_maximum_may_equal_usual_max_or_be_blank():
    Drug.objects.create(**_drug_values(name="equal", maximum=Decimal("20")))
    Drug.objects.create(**_drug_values(name="blank", maximum=None))
    assert Drug.objects.filter(name__in=["equal", "blank"]).count() == 2


def test_drug_limits_checked_by_bulk_update():
    with violates("tracker_drug_maximum_not_below_usual"):
        Drug.objects.filter(name="sertraline").update(maximum=Decimal("100"))
    assert Drug.objects.get(name="sertraline").maximum == Decimal("200")


def test_drug_class_must_be_known():
    with violates("tracker_drug_class_valid"):
        Drug.objects.create(**_drug_values(drug_class="herbal"))


# --- Prescription ----------------------------------------------------------------------


@pytest.mark.parametrize("dose", [Decimal("0"), Decimal("-50")])
def test_prescription_dose_must_be_positive(patient, dose):
    with violates("tracker_prescription_dose_positive"):
        factories.PrescriptionFactory(patient=patient, dose=dose)


def test_prescription_smallest_positive_dose_is_accepted(patient):
    assert factories.PrescriptionFactory(patient=patient, dose=Decimal("0.01")).pk


def test_prescription_dose_checked_by_bulk_create(patient, clinician):
    rx = Prescription(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("0"),
        start_date=START,
        prescriber=clinician,
    )
    with violates("tracker_prescription_dose_positive"):
        Prescription.objects.bulk_create([rx])


def test_prescription_end_not_before_start(patient):
    with violates("tracker_prescription_end_not_before_start"):
        factories.PrescriptionFactory(patient=patient, start_date=START, end_date=START - dt.timedelta(days=1))


def test_prescription_may_end_on_its_start_day_or_be_open_ended(patient):
    factories.PrescriptionFactory(patient=patient, start_date=START, end_date=START)
    factories.PrescriptionFactory(patient=patient, start_date=START, end_date=None)
    assert Prescription.objects.filter(patient=patient).count() == 2


def test_prescription_end_checked_on_update(patient):
    rx = factories.PrescriptionFactory(patient=patient, start_date=START)
    with violates("tracker_prescription_end_not_before_start"):
        Prescription.objects.filter(pk=rx.pk).update(end_date=START - dt.timedelta(days=1))


def test_prescription_status_must_be_valid(patient):
    rx = factories.PrescriptionFactory(patient=patient)
    with violates("tracker_prescription_status_valid"):
        Prescription.objects.filter(pk=rx.pk).update(status="paused")
    for status in Prescription.Status.values:
        Prescription.objects.filter(pk=rx.pk).update(status=status)
        rx.refresh_from_db()
        assert rx.status == status


# --- DoseSchedule ----------------------------------------------------------------------


def test_schedule_interval_must_be_positive(patient):
    rx = factories.PrescriptionFactory(patient=patient)
    with violates("tracker_schedule_interval_positive"):
        make_schedule(rx, kind=DoseSchedule.Kind.EVERY_N_DAYS, interval_days=0)
    assert make_schedule(rx, kind=DoseSchedule.Kind.EVERY_N_DAYS, interval_days=1).interval_days == 1


def test_schedule_end_not_before_start(patient):
    rx = factories.PrescriptionFactory(patient=patient, start_date=START)
    with violates("tracker_schedule_end_not_before_start"):
        make_schedule(rx, start_date=START, end_date=START - dt.timedelta(days=1))
    assert make_schedule(rx, start_date=START, end_date=START).end_date == START


def test_schedule_kind_must_be_valid(patient):
    schedule = make_schedule(factories.PrescriptionFactory(patient=patient))
    with violates("tracker_schedule_kind_valid"):
        DoseSchedule.objects.filter(pk=schedule.pk).update(kind="monthly")


# --- PlannedDose -----------------------------------------------------------------------


def test_one_planned_dose_per_schedule_and_due_time(patient):
    schedule = make_schedule(factories.PrescriptionFactory(patient=patient))
    make_planned_dose(schedule, due_at=DUE_AT)
    with violates(
        "tracker_planneddose_one_live_per_slot",
        sqlite="UNIQUE constraint failed: tracker_planneddose.schedule_id, tracker_planneddose.due_at",
    ):
        make_planned_dose(schedule, due_at=DUE_AT)
    # A different slot of the same schedule, and the same instant on another schedule, are fine.
    make_planned_dose(schedule, due_at=DUE_AT + dt.timedelta(hours=12))
    make_planned_dose(make_schedule(schedule.prescription), due_at=DUE_AT)
    # A withdrawn (cancelled) row stays beside the live one that replans its slot.
    PlannedDose.objects.filter(schedule=schedule, due_at=DUE_AT).update(status=PlannedDose.Status.CANCELLED)
    make_planned_dose(schedule, due_at=DUE_AT)
    assert PlannedDose.objects.count() == 4


def test_planned_dose_deadline_not_before_due(patient):
    schedule = make_schedule(factories.PrescriptionFactory(patient=patient))
    with violates("tracker_planneddose_deadline_after_due"):
        make_planned_dose(schedule, grace=-dt.timedelta(seconds=1))
    assert make_planned_dose(schedule, grace=dt.timedelta(0)).deadline == DUE_AT


def test_planned_dose_status_must_be_valid(patient):
    planned = make_planned_dose(make_schedule(factories.PrescriptionFactory(patient=patient)))
    with violates("tracker_planneddose_status_valid"):
        PlannedDose.objects.filter(pk=planned.pk).update(status="late")


# --- DoseEvent -------------------------------------------------------------------------


def test_one_current_dose_event_per_planned_dose(patient):
    schedule = make_schedule(factories.PrescriptionFactory(patient=patient))
    planned = make_planned_dose(schedule)
    make_dose_event(schedule.prescription, planned_dose=planned)
    with violates(
        "tracker_doseevent_one_per_planned_dose",
        sqlite="UNIQUE constraint failed: tracker_doseevent.planned_dose_id",
    ):
        make_dose_event(schedule.prescription, planned_dose=planned)
    assert DoseEvent.objects.filter(planned_dose=planned).count() == 1


def test_second_dose_event_allowed_once_first_is_entered_in_error(patient, clinician):
    schedule = make_schedule(factories.PrescriptionFactory(patient=patient))
    planned = make_planned_dose(schedule)
    first = make_dose_event(schedule.prescription, planned_dose=planned)
    DoseEvent.objects.filter(pk=first.pk).update(
        entered_in_error_at=timezone.now(), entered_in_error_by=clinician.user, entered_in_error_reason="wrong dose"
    )
    second = make_dose_event(schedule.prescription, planned_dose=planned, outcome="skipped", skip_reason="nausea")
    assert list(DoseEvent.objects.filter(planned_dose=planned).current()) == [second]
    # ... and the correction is itself unique: a third current event is refused.
    with violates(
        "tracker_doseevent_one_per_planned_dose",
        sqlite="UNIQUE constraint failed: tracker_doseevent.planned_dose_id",
    ):
        make_dose_event(schedule.prescription, planned_dose=planned)


def test_dose_events_without_a_planned_dose_are_not_limited(patient):
    rx = factories.PrescriptionFactory(patient=patient)
    make_dose_event(rx, planned_dose=None)
    make_dose_event(rx, planned_dose=None)
    assert DoseEvent.objects.filter(prescription=rx, planned_dose__isnull=True).count() == 2


def test_skipped_dose_needs_a_reason(patient):
    rx = factories.PrescriptionFactory(patient=patient)
    with violates("tracker_doseevent_skip_has_reason"):
        make_dose_event(rx, outcome=DoseEvent.Outcome.SKIPPED, skip_reason="")
    assert make_dose_event(rx, outcome=DoseEvent.Outcome.SKIPPED, skip_reason="felt sick").pk
    assert make_dose_event(rx, outcome=DoseEvent.Outcome.TAKEN, skip_reason="").pk


def test_skip_reason_cannot_be_cleared_by_update(patient):
    rx = factories.PrescriptionFactory(patient=patient)
    event = make_dose_event(rx, outcome=DoseEvent.Outcome.SKIPPED, skip_reason="felt sick")
    with violates("tracker_doseevent_skip_has_reason"):
        DoseEvent.objects.filter(pk=event.pk).update(skip_reason="")


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-25")])
def test_dose_amount_must_be_positive(patient, amount):
    rx = factories.PrescriptionFactory(patient=patient)
    with violates("tracker_doseevent_amount_positive"):
        make_dose_event(rx, amount=amount)


def test_dose_amount_may_be_blank_or_positive(patient):
    rx = factories.PrescriptionFactory(patient=patient)
    assert make_dose_event(rx, amount=None).amount is None
    assert make_dose_event(rx, amount=Decimal("0.01")).amount == Decimal("0.01")


# --- Assessment and side effects --------------------------------------------------------


def test_assessment_instrument_must_be_known(patient):
    assessment = make_assessment(patient)
    # save() would refuse an unknown instrument before the database saw it; update() does not.
    with violates("tracker_assessment_instrument_valid"):
        Assessment.objects.filter(pk=assessment.pk).update(instrument="bdi")


def test_side_effect_other_needs_a_description(patient):
    with violates("tracker_sideeffect_other_described"):
        make_side_effect(patient, effect="other", description="")
    assert make_side_effect(patient, effect="other", description="metallic taste").pk
    assert make_side_effect(patient, effect="nausea", description="").pk


def test_side_effect_severity_must_be_valid(patient):
    with violates("tracker_sideeffect_severity_valid"):
        make_side_effect(patient, severity="extreme")


# --- Flag ------------------------------------------------------------------------------


def test_one_unresolved_flag_per_dedup_key(patient):
    make_flag(patient, dedup_key="dose.missed:planned:1")
    with violates(
        "tracker_flag_one_unresolved_per_key",
        sqlite="UNIQUE constraint failed: tracker_flag.dedup_key",
    ):
        make_flag(patient, dedup_key="dose.missed:planned:1")
    assert Flag.objects.filter(dedup_key="dose.missed:planned:1").count() == 1


def test_acknowledged_flag_still_blocks_a_second_open_one(patient):
    make_flag(patient, dedup_key="k", status=Flag.Status.ACKNOWLEDGED)
    with violates("tracker_flag_one_unresolved_per_key", sqlite="UNIQUE constraint failed: tracker_flag.dedup_key"):
        make_flag(patient, dedup_key="k")


def test_new_open_flag_allowed_after_the_first_is_resolved(patient, clinician):
    first = make_flag(patient, dedup_key="dose.missed:planned:1")
    Flag.objects.filter(pk=first.pk).update(
        status=Flag.Status.RESOLVED, resolved_at=timezone.now(), resolved_by=clinician.user
    )
    second = make_flag(patient, dedup_key="dose.missed:planned:1")
    assert second.status == Flag.Status.OPEN
    assert Flag.objects.filter(dedup_key="dose.missed:planned:1").count() == 2


def test_reopening_a_resolved_flag_is_refused_while_another_is_open(patient, clinician):
    first = make_flag(patient, dedup_key="k", status=Flag.Status.RESOLVED, resolved_at=timezone.now())
    make_flag(patient, dedup_key="k")
    with violates("tracker_flag_one_unresolved_per_key", sqlite="UNIQUE constraint failed: tracker_flag.dedup_key"):
        Flag.objects.filter(pk=first.pk).update(status=Flag.Status.OPEN, resolved_at=None)


@pytest.mark.parametrize("severity", [0, 15, 50])
def test_flag_severity_must_be_valid(patient, severity):
    with violates("tracker_flag_severity_valid"):
        make_flag(patient, severity=severity)


def test_every_flag_severity_is_accepted(patient):
    for value in (10, 20, 30, 40):
        make_flag(patient, severity=value, dedup_key=f"sev:{value}")
    assert sorted(Flag.objects.values_list("severity", flat=True)) == [10, 20, 30, 40]


def test_flag_status_must_be_valid(patient):
    flag = make_flag(patient)
    with violates("tracker_flag_status_valid"):
        Flag.objects.filter(pk=flag.pk).update(status="snoozed")


def test_resolved_flag_needs_a_resolution_time(patient):
    with violates("tracker_flag_resolved_has_time"):
        make_flag(patient, status=Flag.Status.RESOLVED, resolved_at=None)
    flag = make_flag(patient)
    with violates("tracker_flag_resolved_has_time"):
        Flag.objects.filter(pk=flag.pk).update(status=Flag.Status.RESOLVED)
