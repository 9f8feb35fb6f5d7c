"""In-clinic sessions: validation named by field, the BP decision, and the dose they record."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.dosing import at
from tests.factories import drug
from tracker.esketamine import esketamine_phases, ketamine_series
from tracker.models import DoseEvent, InClinicSession, PlannedDose
from tracker.services.doses import record_dose
from tracker.services.prescriptions import prescribe
from tracker.services.sessions import (
    complete_session,
    record_bp_decision,
    record_dosing,
    start_session,
    update_session,
)

pytestmark = pytest.mark.django_db

FULL_MONITORING = {
    "bp_40min_systolic": 138,
    "bp_40min_diastolic": 85,
    "spo2_lowest": 97,
    "moaas_lowest": 4,
    "observation_started_at": None,
    "bp_discharge_systolic": 128,
    "bp_discharge_diastolic": 80,
    "moaas_at_discharge": 5,
    "dissociation_resolved": True,
    "no_driving_acknowledged": True,
}


def esketamine_course(patient, clinician, start: str = "2026-06-01", **phases):
    """Esketamine 56 mg from Monday ``start``: sessions Mon/Thu at 10:00 London (09:00 UTC)."""
    start_date = dt.date.fromisoformat(start)
    return prescribe(
        patient=patient,
        drug=drug("esketamine"),
        dose=Decimal("56"),
        start_date=start_date,
        prescriber=clinician,
        schedules=esketamine_phases(start_date=start_date, **phases),
        indication="Treatment-resistant depression",
        now=at(f"{start}T00:00") - dt.timedelta(days=1),
    )


def ketamine_course(patient, clinician, start: str = "2026-06-01"):
    """An IV ketamine series; prescribing it needs a recorded weight (§2), so 80 kg if none."""
    start_date = dt.date.fromisoformat(start)
    if patient.weight_kg is None:
        patient.weight_kg = Decimal("80")
        patient.save(update_fields=["weight_kg"])
    return prescribe(
        patient=patient,
        drug=drug("ketamine"),
        dose=Decimal("0.5"),
        start_date=start_date,
        prescriber=clinician,
        schedules=ketamine_series(start_date=start_date),
        now=at(f"{start}T00:00") - dt.timedelta(days=1),
    )


def planned(rx, day: str = "2026-06-01") -> PlannedDose:
    return PlannedDose.objects.get(prescription=rx, local_date=day)


def dosed_session(
    rx,
    clinician,
    *,
    first: str = "2026-06-01T09:05",
    bp: tuple[int, int] = (130, 80),
    devices: int = 2,
    day: str | None = "2026-06-01",
) -> InClinicSession:
    """A session started 10 minutes before ``first`` and dosed at ``first``."""
    first_at = at(first)
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx, day) if day else None,
        bp_before_systolic=bp[0],
        bp_before_diastolic=bp[1],
        bp_before_at=first_at - dt.timedelta(minutes=10),
        now=first_at - dt.timedelta(minutes=10),
    ).session
    return record_dosing(
        session=session, first_device_at=first_at, devices=devices, lot_number="L123", now=first_at
    ).session


def completed_session(
    rx, clinician, *, minutes: int = 125, monitoring: dict | None = None, **kwargs
) -> InClinicSession:
    session = dosed_session(rx, clinician, **kwargs)
    discharge = session.first_device_at + dt.timedelta(minutes=minutes)
    values = {
        **FULL_MONITORING,
        "bp_40min_at": session.first_device_at + dt.timedelta(minutes=40),
        **(monitoring or {}),
    }
    return complete_session(session=session, discharge_at=discharge, monitoring=values, now=discharge).session


def error_for(excinfo: pytest.ExceptionInfo[ValidationError], field: str) -> str:
    return excinfo.value.message_dict[field][0]


def test_patient_cannot_log_esketamine_themselves_and_is_told_it_is_given_at_the_clinic(patient, clinician):
    rx = esketamine_course(patient, clinician)
    with pytest.raises(ValidationError) as excinfo:
        record_dose(prescription=rx, occurred_at=at("2026-06-01T09:00"), reporter="patient", now=at("2026-06-01T09:30"))
    assert excinfo.value.messages == [
        "Esketamine (nasal) is given only at the clinic, so it cannot be logged here. "
        "If you took it outside the clinic, please use 'Report taking it outside the clinic'."
    ]
    assert not DoseEvent.objects.exists()


def test_completed_session_records_the_dose_at_the_clinic_matched_to_the_planned_session(patient, clinician):
    rx = esketamine_course(patient, clinician)
    result = complete_session(
        session=dosed_session(rx, clinician),
        discharge_at=at("2026-06-01T11:10"),
        monitoring={**FULL_MONITORING, "bp_40min_at": at("2026-06-01T09:45")},
        now=at("2026-06-01T11:10"),
    )
    session = result.session
    event = session.dose_event
    assert result.warnings == []
    assert session.status == InClinicSession.Status.COMPLETED
    assert session.observation_minutes == 125
    assert (event.location, event.reporter, event.amount, event.timing) == (
        "clinic",
        "clinician",
        Decimal(56),
        "on_time",
    )
    assert event.planned_dose == planned(rx)
    assert planned(rx).status == PlannedDose.Status.TAKEN


def test_high_pre_dose_bp_warns_and_refuses_dosing_until_a_decision_is_recorded(patient, clinician):
    rx = esketamine_course(patient, clinician)
    started = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        bp_before_systolic=150,
        bp_before_diastolic=95,
        now=at("2026-06-01T08:55"),
    )
    warning = (
        "Blood pressure before dosing is 150/95 mmHg, above the label threshold of 140/90 mmHg: consider "
        "withholding the dose. Record the decision (withhold or proceed) and the reason before dosing."
    )
    assert started.warnings == [warning]
    with pytest.raises(ValidationError) as excinfo:
        record_dosing(
            session=started.session, first_device_at=at("2026-06-01T09:05"), devices=2, now=at("2026-06-01T09:05")
        )
    assert error_for(excinfo, "bp_decision") == warning

    record_bp_decision(
        session=started.session, decision="proceeded", reason="Usual BP for him; no risk factors", by=clinician
    )
    dosed = record_dosing(
        session=started.session, first_device_at=at("2026-06-01T09:05"), devices=2, now=at("2026-06-01T09:05")
    )
    assert (dosed.session.devices, dosed.session.bp_decision_by) == (2, clinician)


def test_bp_exactly_at_the_threshold_needs_no_decision(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = dosed_session(rx, clinician, bp=(140, 90))  # strictly greater warns (§1 bp_threshold)
    assert session.first_device_at is not None and not session.pre_dose_bp_high


def test_withheld_session_records_no_dose_taken_and_the_planned_session_as_skipped(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        bp_before_systolic=170,
        bp_before_diastolic=100,
        now=at("2026-06-01T08:55"),
    ).session
    withheld = record_bp_decision(
        session=session, decision="withheld", reason="Recheck with GP first", by=clinician, now=at("2026-06-01T09:00")
    ).session
    assert withheld.status == InClinicSession.Status.WITHHELD
    assert not DoseEvent.objects.filter(outcome="taken").exists()
    assert withheld.dose_event.skip_reason.startswith("Withheld at the clinic: blood pressure before dosing 170/100")
    assert planned(rx).status == PlannedDose.Status.SKIPPED
    with pytest.raises(ValidationError) as excinfo:
        record_dosing(session=withheld, first_device_at=at("2026-06-01T09:05"), devices=2, now=at("2026-06-01T09:05"))
    assert error_for(excinfo, "first_device_at") == "This session is closed; its dose can't change."


def test_withhold_decision_needs_a_reason(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        bp_before_systolic=150,
        bp_before_diastolic=95,
        now=at("2026-06-01T08:55"),
    ).session
    with pytest.raises(ValidationError) as excinfo:
        record_bp_decision(session=session, decision="withheld", reason=" ", by=clinician)
    assert error_for(excinfo, "bp_decision_reason") == "Say why the dose is withheld or given."


def test_dosing_needs_the_pre_dose_blood_pressure(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = start_session(prescription=rx, administered_by=clinician, now=at("2026-06-01T08:55")).session
    with pytest.raises(ValidationError) as excinfo:
        record_dosing(session=session, first_device_at=at("2026-06-01T09:05"), devices=2, now=at("2026-06-01T09:05"))
    assert (
        error_for(excinfo, "bp_before_systolic")
        == "Record the blood pressure before dosing first (the label asks for it every time)."
    )


@pytest.mark.parametrize("devices", [0, 4])
def test_devices_outside_one_to_three_are_refused_with_the_maximum(patient, clinician, devices):
    rx = esketamine_course(patient, clinician)
    with pytest.raises(ValidationError) as excinfo:
        dosed_session(rx, clinician, devices=devices)
    assert error_for(excinfo, "devices") in (
        "Give 1 to 3 devices (28 mg each); the maximum is 84 mg per session.",
        "112 mg is above the maximum for Esketamine (nasal): 84 mg per clinic session.",
    )


def test_three_devices_record_84_mg_and_warn_that_the_prescription_says_56(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = dosed_session(rx, clinician, devices=3)
    assert session.dose_amount == Decimal(84)
    assert session.dose_display == "84 mg (3 devices)"


def test_discharge_must_follow_the_first_device(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = dosed_session(rx, clinician)
    with pytest.raises(ValidationError) as excinfo:
        complete_session(session=session, discharge_at=at("2026-06-01T09:00"), now=at("2026-06-01T11:00"))
    assert error_for(excinfo, "discharge_at") == "Discharge must be after the first device."


def test_implausible_blood_pressure_is_refused_beside_its_field(patient, clinician):
    rx = esketamine_course(patient, clinician)
    with pytest.raises(ValidationError) as excinfo:
        start_session(
            prescription=rx,
            administered_by=clinician,
            bp_before_systolic=1400,
            bp_before_diastolic=90,
            now=at("2026-06-01T08:55"),
        )
    assert error_for(excinfo, "bp_before_systolic") == "Systolic 1400 mmHg is not plausible; check the reading."


def test_one_current_session_per_planned_session(patient, clinician):
    rx = esketamine_course(patient, clinician)
    start_session(prescription=rx, administered_by=clinician, planned_dose=planned(rx), now=at("2026-06-01T08:55"))
    with pytest.raises(ValidationError) as excinfo:
        start_session(prescription=rx, administered_by=clinician, planned_dose=planned(rx), now=at("2026-06-01T08:56"))
    assert error_for(excinfo, "planned_dose") == "This planned session already has a session record."


def test_sessions_are_only_for_clinic_only_drugs(patient, clinician):
    from tests.dosing import daily_course

    rx = daily_course(patient, clinician)
    with pytest.raises(ValidationError) as excinfo:
        start_session(prescription=rx, administered_by=clinician, now=at("2026-06-01T08:55"))
    assert error_for(excinfo, "prescription") == "Sertraline is not a clinic-only medicine; record its doses as usual."


def test_iv_ketamine_needs_the_patients_weight_and_warns_above_0_75_mg_per_kg(patient, clinician):
    rx = ketamine_course(patient, clinician)
    # Prescribing needed a weight (§2); the session checks again in case it was withdrawn since.
    patient.weight_kg = None
    patient.save(update_fields=["weight_kg"])
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        bp_before_systolic=120,
        bp_before_diastolic=75,
        now=at("2026-06-01T08:55"),
    ).session
    with pytest.raises(ValidationError) as excinfo:
        record_dosing(
            session=session,
            first_device_at=at("2026-06-01T09:00"),
            dose_mg_per_kg=Decimal("0.5"),
            infusion_minutes=40,
            now=at("2026-06-01T09:00"),
        )
    assert error_for(excinfo, "dose_mg_per_kg") == "Record the patient's weight first: IV ketamine is dosed per kg."
    patient.weight_kg = Decimal("80")
    patient.save()
    result = record_dosing(
        session=session,
        first_device_at=at("2026-06-01T09:00"),
        dose_mg_per_kg=Decimal("0.8"),
        infusion_minutes=30,
        now=at("2026-06-01T09:00"),
    )
    assert result.warnings == [
        "0.8 mg/kg is above the 0.75 mg/kg studied for depression.",
        "An infusion of 30 min is shorter than the usual 40 min.",
    ]
    assert result.session.dose_display == "0.8 mg/kg, 64.0 mg over 30 min"
    # §2: observe ≥ 60 min after the infusion ends, i.e. 09:00 + 30 + 60 min.
    assert result.session.earliest_discharge_at == at("2026-06-01T10:30")


def test_update_session_applies_a_whole_form_in_clinical_order(patient, clinician):
    rx = esketamine_course(patient, clinician)
    session = start_session(
        prescription=rx, administered_by=clinician, planned_dose=planned(rx), now=at("2026-06-01T08:50")
    )
    result = update_session(
        session=session.session,
        values={
            "bp_before_systolic": 145,
            "bp_before_diastolic": 88,
            "bp_before_at": at("2026-06-01T08:55"),
            "bp_decision": "proceeded",
            "bp_decision_reason": "Anxious; repeat reading 138/86",
            "devices": 2,
            "first_device_at": at("2026-06-01T09:05"),
            "bp_40min_at": at("2026-06-01T09:45"),
            **FULL_MONITORING,
            "discharge_at": at("2026-06-01T11:05"),
        },
        by=clinician,
        now=at("2026-06-01T11:05"),
    )
    assert result.session.status == InClinicSession.Status.COMPLETED
    assert result.session.dose_event.amount == Decimal(56)
    assert result.warnings[0].startswith("Blood pressure before dosing is 145/88 mmHg")
