"""The ketamine sweep: one named case per rule of clinical-reference §0, idempotent, fixed query count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from tests.conftest import need_service
from tests.dosing import at, daily_course
from tests.factories import PatientFactory, PrescriptionFactory, drug
from tests.symptoms import phq9
from tests.test_ketamine_sessions import (
    FULL_MONITORING,
    completed_session,
    dosed_session,
    esketamine_course,
    planned,
)
from tracker.models import Drug, Flag, FlagKind, InClinicSession, PlannedDose, Prescription, Severity
from tracker.rules import ketamine, missed_doses
from tracker.services.sessions import complete_session, start_session

pytestmark = pytest.mark.django_db


def flags(kind: str) -> list[Flag]:
    return list(Flag.objects.filter(kind=kind).order_by("id"))


def with_failed_trials(patient, clinician) -> None:
    """Two adequate failed antidepressant trials (§3): 60 days each at the usual minimum."""
    for name, dose, start in (("sertraline", "50", "2026-01-05"), ("fluoxetine", "20", "2026-03-09")):
        start_date = dt.date.fromisoformat(start)
        PrescriptionFactory(
            patient=patient,
            prescriber=clinician,
            drug=drug(name),
            dose=Decimal(dose),
            start_date=start_date,
            end_date=start_date + dt.timedelta(days=59),
            status=Prescription.Status.COMPLETED,
            clinician_marked_failed=True,
        )


def test_session_missed_after_24_hours_raises_esk_session_missed_not_dose_missed(patient, clinician):
    rx = esketamine_course(patient, clinician)  # first session Mon 01 Jun 10:00 London (09:00 UTC)
    ketamine.sweep(now=at("2026-06-02T08:59"))
    assert not flags(FlagKind.ESK_SESSION_MISSED)
    assert missed_doses.sweep(now=at("2026-06-02T09:00")).examined == 0  # left to the ketamine sweep
    ketamine.sweep(now=at("2026-06-02T09:00"))
    (flag,) = flags(FlagKind.ESK_SESSION_MISSED)
    assert flag.severity == Severity.WARNING
    assert flag.message == (
        "Esketamine (nasal) clinic session planned for 10:00 on Mon 01 Jun 2026 (local time) has no session record."
    )
    assert flag.action.startswith("Contact the patient to rebook")
    # The label's advice whole (§1 missed session): both branches, not only the worsening one.
    assert "If they have not, continue the current dosing schedule" in flag.action
    assert "consider returning to the previous dosing schedule" in flag.action
    assert planned(rx).status == PlannedDose.Status.MISSED
    assert not flags(FlagKind.DOSE_MISSED)


def test_a_session_recorded_late_resolves_the_missed_session_flag(patient, clinician):
    rx = esketamine_course(patient, clinician)
    ketamine.sweep(now=at("2026-06-02T09:00"))
    completed_session(rx, clinician, first="2026-06-02T09:30")  # matched to Monday's missed session
    (flag,) = flags(FlagKind.ESK_SESSION_MISSED)
    assert flag.status == Flag.Status.RESOLVED
    assert planned(rx).status == PlannedDose.Status.TAKEN


def test_an_open_session_record_is_not_a_missed_session(patient, clinician):
    rx = esketamine_course(patient, clinician)
    dosed_session(rx, clinician)  # dosed, never discharged
    ketamine.sweep(now=at("2026-06-02T10:00"))
    assert not flags(FlagKind.ESK_SESSION_MISSED)
    assert planned(rx).status == PlannedDose.Status.PENDING


def test_90_minute_discharge_is_flagged_early_discharge(patient, clinician):
    rx = esketamine_course(patient, clinician)
    result = complete_session(
        session=dosed_session(rx, clinician), discharge_at=at("2026-06-01T10:35"), now=at("2026-06-01T10:35")
    )
    assert result.warnings[0] == (
        "Discharged after 90 min of observation, before the minimum (120 min from the first device)."
    )
    ketamine.sweep(now=at("2026-06-01T10:40"))
    (flag,) = flags(FlagKind.ESK_EARLY_DISCHARGE)
    assert flag.severity == Severity.URGENT
    assert flag.message == (
        "Esketamine (nasal) session on 01 Jun 2026 10:05: discharged 90 min after the first device, "
        "before the minimum observation of 120 min."
    )
    assert flag.action == (
        "Call the patient today to check they are well and got home safely, and review discharge practice."
    )


@pytest.mark.parametrize(
    ("observed", "early"),
    [
        (dt.timedelta(minutes=119), True),
        (dt.timedelta(minutes=119, seconds=59), True),  # still short of 120 min: early
        (dt.timedelta(minutes=120), False),  # §1 "≥ 120 min since the first device": allowed
    ],
)
def test_early_discharge_boundary_is_the_same_for_the_warning_and_the_flag(observed, early, patient, clinician):
    # One rule (InClinicSession.discharged_early): the nurse's warning at discharge and the
    # sweep's esk.early_discharge flag agree at 119 and at exactly 120 minutes.
    rx = esketamine_course(patient, clinician)
    session = dosed_session(rx, clinician)
    discharge = session.first_device_at + observed
    result = complete_session(
        session=session,
        discharge_at=discharge,
        monitoring={**FULL_MONITORING, "bp_40min_at": session.first_device_at + dt.timedelta(minutes=40)},
        now=discharge,
    )
    warning = "Discharged after 119 min of observation, before the minimum (120 min from the first device)."
    assert result.warnings == ([warning] if early else [])
    ketamine.sweep(now=discharge + dt.timedelta(minutes=5))
    raised = [flag.message for flag in flags(FlagKind.ESK_EARLY_DISCHARGE)]
    assert raised == (
        [
            "Esketamine (nasal) session on 01 Jun 2026 10:05: discharged 119 min after the first device, "
            "before the minimum observation of 120 min."
        ]
        if early
        else []
    )


def test_120_minute_discharge_with_recovery_raises_no_session_flag(patient, clinician):
    with_failed_trials(patient, clinician)
    rx = esketamine_course(patient, clinician)
    completed_session(rx, clinician, minutes=120, monitoring={"rems_form_submitted_at": at("2026-06-01T11:00")})
    ketamine.sweep(now=at("2026-06-20T00:00"))
    assert set(Flag.objects.values_list("kind", flat=True)) == {FlagKind.ESK_SESSION_MISSED}  # later sessions only


def test_discharge_with_moaas_below_5_is_flagged_not_recovered(patient, clinician):
    rx = esketamine_course(patient, clinician)
    completed_session(rx, clinician, monitoring={"moaas_at_discharge": 4, "dissociation_resolved": False})
    ketamine.sweep(now=at("2026-06-01T12:00"))
    (flag,) = flags(FlagKind.ESK_DISCHARGED_NOT_RECOVERED)
    assert flag.message == (
        "Esketamine (nasal) session on 01 Jun 2026 10:05: discharged with MOAA/s 4 (needs 5); "
        "dissociation not resolved."
    )


def test_monitoring_incomplete_six_hours_after_the_first_device(patient, clinician):
    rx = esketamine_course(patient, clinician)
    dosed_session(rx, clinician)  # first device 09:05 UTC; nothing after dosing recorded
    ketamine.sweep(now=at("2026-06-01T15:04"))
    assert not flags(FlagKind.ESK_MONITORING_INCOMPLETE)
    ketamine.sweep(now=at("2026-06-01T15:05"))
    (flag,) = flags(FlagKind.ESK_MONITORING_INCOMPLETE)
    assert flag.message == (
        "Esketamine (nasal) session on 01 Jun 2026 10:05: monitoring incomplete after 6 h; missing "
        "BP about 40 min after the first device (30–60 min), SpO2, MOAA/s at discharge, dissociation check at "
        "discharge, BP at discharge, discharge time, no-driving acknowledgement."
    )
    assert flag.action == "Complete the session record from the clinic's notes, or mark it entered in error."


def test_high_bp_without_a_decision_is_flagged_with_the_reading(patient, clinician):
    rx = esketamine_course(patient, clinician)
    start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        bp_before_systolic=150,
        bp_before_diastolic=95,
        now=at("2026-06-01T08:55"),
    )
    ketamine.sweep(now=at("2026-06-01T09:54"))
    assert not flags(FlagKind.ESK_BP_NO_DECISION)
    ketamine.sweep(now=at("2026-06-01T09:55"))
    (flag,) = flags(FlagKind.ESK_BP_NO_DECISION)
    assert flag.severity == Severity.URGENT
    assert flag.action == (
        "Record whether the dose was withheld or given despite BP 150/95 mmHg (label threshold 140/90)."
    )


def test_rems_form_not_submitted_within_7_days_is_flagged(patient, clinician):
    rx = esketamine_course(patient, clinician)
    completed_session(rx, clinician)
    ketamine.sweep(now=at("2026-06-08T09:04"))
    assert not flags(FlagKind.ESK_REMS_FORM_OVERDUE)
    ketamine.sweep(now=at("2026-06-08T09:05"))
    (flag,) = flags(FlagKind.ESK_REMS_FORM_OVERDUE)
    assert flag.action == "Submit the REMS Patient Monitoring Form for this session and record when it was sent."
    assert InClinicSession.objects.get().settled_at == at("2026-06-08T09:05")


def test_interaction_flag_names_the_benzodiazepine_and_what_to_monitor(patient, clinician):
    daily_course(patient, clinician, name="lorazepam", dose="1")
    esketamine_course(patient, clinician)
    ketamine.sweep(now=at("2026-06-01T12:00"))
    (flag,) = flags(FlagKind.ESK_INTERACTION)
    assert flag.message == (
        "Esketamine (nasal) is prescribed while Lorazepam, a benzodiazepine (CNS depressant), is active: "
        "monitor sedation, respiration and SpO2 during and after each session."
    )
    assert (
        flag.action
        == "Review whether Lorazepam should continue, and monitor sedation, respiration and SpO2 at every session."
    )


@pytest.mark.parametrize(
    ("name", "dose", "what"),
    [("methylphenidate", "20", "blood pressure and heart rate"), ("phenelzine", "15", "blood pressure")],
)
def test_interaction_flag_for_stimulants_and_maois_says_monitor_blood_pressure(patient, clinician, name, dose, what):
    daily_course(patient, clinician, name=name, dose=dose)
    esketamine_course(patient, clinician)
    ketamine.sweep(now=at("2026-06-01T12:00"))
    (flag,) = flags(FlagKind.ESK_INTERACTION)
    assert drug(name).display_name in flag.message and f"monitor {what} during" in flag.message


def test_no_interaction_flag_for_an_ssri(patient, clinician):
    daily_course(patient, clinician, name="escitalopram", dose="10")
    esketamine_course(patient, clinician)
    ketamine.sweep(now=at("2026-06-01T12:00"))
    assert not flags(FlagKind.ESK_INTERACTION)


def test_trd_unconfirmed_with_fewer_than_two_adequate_failed_trials(patient, clinician):
    # One adequate trial with a PHQ-9 fall below 50 % (failed), one too short (30 days).
    PrescriptionFactory(
        patient=patient,
        prescriber=clinician,
        drug=drug("sertraline"),
        dose=Decimal("100"),
        start_date=dt.date(2026, 1, 5),
        end_date=dt.date(2026, 3, 1),
        status=Prescription.Status.COMPLETED,
    )
    phq9(patient, "2026-01-02T10:00", 20)
    phq9(patient, "2026-02-27T10:00", 16)
    PrescriptionFactory(
        patient=patient,
        prescriber=clinician,
        drug=drug("fluoxetine"),
        dose=Decimal("20"),
        start_date=dt.date(2026, 3, 9),
        end_date=dt.date(2026, 4, 7),
        status=Prescription.Status.STOPPED,
        clinician_marked_failed=True,
    )
    esketamine_course(patient, clinician)
    ketamine.sweep(now=at("2026-06-01T12:00"))
    (flag,) = flags(FlagKind.ESK_TRD_UNCONFIRMED)
    assert flag.message == (
        "Esketamine (nasal) is prescribed with 1 adequate failed antidepressant trial on record (treatment "
        "resistance needs 2: ≥ 42 days at an adequate dose with < 50% PHQ-9 improvement or marked failed): "
        "Sertraline (PHQ-9 20 → 16, 56 days)."
    )
    assert flag.action.startswith("Record the earlier antidepressant trials")


def test_two_adequate_failed_trials_confirm_trd(patient, clinician):
    with_failed_trials(patient, clinician)
    esketamine_course(patient, clinician)
    ketamine.sweep(now=at("2026-06-01T12:00"))
    assert not flags(FlagKind.ESK_TRD_UNCONFIRMED)


def test_re_running_the_sweep_raises_nothing_new(patient, clinician):
    daily_course(patient, clinician, name="lorazepam", dose="1")
    rx = esketamine_course(patient, clinician)
    complete_session(
        session=dosed_session(rx, clinician), discharge_at=at("2026-06-01T10:35"), now=at("2026-06-01T10:35")
    )
    first = ketamine.sweep(now=at("2026-06-09T12:00"))
    second = ketamine.sweep(now=at("2026-06-09T12:00"))
    third = ketamine.sweep(now=at("2026-06-10T12:00"))
    kinds = set(Flag.objects.values_list("kind", flat=True))
    assert first.flags_raised == Flag.objects.count() and first.flags_raised >= 6
    assert {FlagKind.ESK_EARLY_DISCHARGE, FlagKind.ESK_INTERACTION, FlagKind.ESK_TRD_UNCONFIRMED} <= kinds
    assert (second.flags_raised, third.flags_raised) == (0, 0)


def test_resolved_session_flags_are_not_raised_again(patient, clinician):
    from tracker.services.flags import resolve_flag

    rx = esketamine_course(patient, clinician)
    complete_session(
        session=dosed_session(rx, clinician), discharge_at=at("2026-06-01T10:35"), now=at("2026-06-01T10:35")
    )
    ketamine.sweep(now=at("2026-06-01T11:00"))
    (flag,) = flags(FlagKind.ESK_EARLY_DISCHARGE)
    resolve_flag(flag=flag, by=clinician.user, note="Called: home safely.")
    ketamine.sweep(now=at("2026-06-01T12:00"))
    assert len(flags(FlagKind.ESK_EARLY_DISCHARGE)) == 1


def _clinic_of(n: int, clinic, clinician) -> None:
    """``n`` patients on esketamine (and lorazepam), each with an early discharge."""
    for i in range(n):
        patient = PatientFactory(clinic=clinic, record_number=f"K-{i:04d}")
        daily_course(patient, clinician, name="lorazepam", dose="1")
        rx = esketamine_course(patient, clinician)
        complete_session(
            session=dosed_session(rx, clinician), discharge_at=at("2026-06-01T10:35"), now=at("2026-06-01T10:35")
        )


@pytest.mark.parametrize("patients", [3, 30])
def test_sweep_query_count_does_not_grow_with_patients(patients, clinic, clinician, django_assert_num_queries):
    need_service(connection.vendor == "postgresql", "the query-count shape is asserted on PostgreSQL")
    _clinic_of(patients, clinic, clinician)
    for model in (PlannedDose, InClinicSession):
        ContentType.objects.get_for_model(model)  # cached per process, as in a worker
    # Pass 1 (missed sessions): SAVEPOINT, claim UPDATE ... RETURNING, RELEASE.                 3
    # Storing flags (store_flags) is 6: SAVEPOINT, lock the open problems of these keys,
    #   INSERT the new ones, INSERT their facts, their history rows, RELEASE.
    # Pass 2 (sessions), one batch: SAVEPOINT, unsettled sessions with patient and drug, keys
    #   already raised, storing, RELEASE (none settles yet, so the settle UPDATE is skipped:
    #   Django sends no query for an empty id list).                                        10
    # Pass 3 (courses), one chunk: patient ids, patients, prescriptions, PHQ-9 scores, keys
    #   already raised, storing; then the empty next chunk.                                 12
    with django_assert_num_queries(25):
        result = ketamine.sweep(now=at("2026-06-01T12:00"))
    assert result.flags_raised == 3 * patients  # early discharge, interaction, TRD unconfirmed


# --- A later record answers a session flag: it resolves itself, with the tracker as resolver ---------


def test_completing_the_record_resolves_monitoring_incomplete(patient, clinician):
    from tracker.services.sessions import update_session

    rx = esketamine_course(patient, clinician)
    session = dosed_session(rx, clinician)  # first device 09:05 UTC; nothing after dosing
    ketamine.sweep(now=at("2026-06-01T15:05"))
    (flag,) = flags(FlagKind.ESK_MONITORING_INCOMPLETE)
    # The nurse fills in the rest from the clinic's notes that evening.
    update_session(
        session=session,
        values={
            "bp_40min_systolic": 135,
            "bp_40min_diastolic": 85,
            "bp_40min_at": at("2026-06-01T09:45"),
            "spo2_lowest": 96,
            "moaas_lowest": 4,
            "respiratory_depression": False,
            "observation_started_at": at("2026-06-01T09:05"),
            "bp_discharge_systolic": 128,
            "bp_discharge_diastolic": 80,
            "moaas_at_discharge": 5,
            "dissociation_resolved": True,
            "no_driving_acknowledged": True,
            "discharge_at": at("2026-06-01T11:10"),
        },
        by=clinician,
        recorded_by=clinician.user,
        now=at("2026-06-01T18:00"),
    )
    flag.refresh_from_db()
    assert flag.status == Flag.Status.RESOLVED and flag.resolved_by is None
    assert flag.resolution_note == "Resolved by the tracker: the session record was completed (01 Jun 2026 19:00 BST)."
    ketamine.sweep(now=at("2026-06-02T09:00"))
    assert [f.status for f in flags(FlagKind.ESK_MONITORING_INCOMPLETE)] == [Flag.Status.RESOLVED]  # not again


def test_a_recorded_decision_resolves_bp_no_decision(patient, clinician):
    from tracker.services.sessions import update_session

    rx = esketamine_course(patient, clinician)
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        bp_before_systolic=150,
        bp_before_diastolic=95,
        now=at("2026-06-01T08:55"),
    ).session
    ketamine.sweep(now=at("2026-06-01T09:55"))
    (flag,) = flags(FlagKind.ESK_BP_NO_DECISION)
    update_session(
        session=session,
        values={"bp_decision": "withheld", "bp_decision_reason": "Repeat 152/96; rebooked"},
        by=clinician,
        now=at("2026-06-01T10:00"),
    )
    flag.refresh_from_db()
    assert flag.status == Flag.Status.RESOLVED
    assert "a withhold/proceed decision was recorded" in flag.resolution_note


def test_marking_the_rems_form_sent_resolves_rems_form_overdue(patient, clinician):
    from tracker.services.sessions import update_session

    rx = esketamine_course(patient, clinician)
    session = completed_session(rx, clinician)
    ketamine.sweep(now=at("2026-06-08T09:05"))
    (flag,) = flags(FlagKind.ESK_REMS_FORM_OVERDUE)
    update_session(
        session=session,
        values={"rems_form_submitted_at": at("2026-06-08T10:00")},
        by=clinician,
        now=at("2026-06-08T10:30"),
    )
    flag.refresh_from_db()
    assert flag.status == Flag.Status.RESOLVED
    assert InClinicSession.objects.get().rems_form_submitted_at == at("2026-06-08T10:00")


def test_early_discharge_is_never_answered_by_a_later_record(patient, clinician):
    """What happened stays a problem for a person: completing the form does not clear it."""
    from tracker.services.sessions import update_session

    rx = esketamine_course(patient, clinician)
    session = completed_session(rx, clinician, minutes=90)
    ketamine.sweep(now=at("2026-06-01T11:00"))
    (flag,) = flags(FlagKind.ESK_EARLY_DISCHARGE)
    update_session(
        session=session,
        values={"rems_form_submitted_at": at("2026-06-01T12:00")},
        by=clinician,
        now=at("2026-06-01T12:30"),
    )
    flag.refresh_from_db()
    assert flag.status == Flag.Status.OPEN


# --- §1 setting: REMS enrolment for outpatients; inpatients file no monitoring form ------------------


def test_a_first_outpatient_esketamine_session_needs_the_rems_enrolment(patient, clinician):
    from tracker.services.errors import ServiceError

    patient.rems_enrolled_on = None
    patient.save()
    rx = esketamine_course(patient, clinician)
    with pytest.raises(ServiceError) as refused:
        start_session(prescription=rx, administered_by=clinician, planned_dose=planned(rx), now=at("2026-06-01T08:55"))
    message = refused.value.message_dict["care_setting"][0]
    assert "not enrolled in the Spravato REMS" in message and "Record the enrolment date" in message
    assert not InClinicSession.objects.exists()
    # An inpatient needs no enrolment, and no REMS Patient Monitoring Form afterwards (§1 setting).
    session = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        care_setting="inpatient",
        now=at("2026-06-01T08:55"),
    ).session
    assert session.care_setting == "inpatient"


def test_an_inpatient_session_raises_no_rems_form_flag_and_the_setting_carries_over(patient, clinician):
    rx = esketamine_course(patient, clinician)
    first = start_session(
        prescription=rx,
        administered_by=clinician,
        planned_dose=planned(rx),
        care_setting="inpatient",
        bp_before_systolic=130,
        bp_before_diastolic=80,
        now=at("2026-06-01T08:55"),
    ).session
    from tests.test_ketamine_sessions import FULL_MONITORING
    from tracker.services.sessions import complete_session, record_dosing

    record_dosing(
        session=first, first_device_at=at("2026-06-01T09:05"), devices=2, lot_number="L1", now=at("2026-06-01T09:05")
    )
    complete_session(
        session=first,
        discharge_at=at("2026-06-01T11:10"),
        monitoring={**FULL_MONITORING, "bp_40min_at": at("2026-06-01T09:45")},
        now=at("2026-06-01T11:10"),
    )
    ketamine.sweep(now=at("2026-06-09T09:00"))  # past the 7 days
    assert not flags(FlagKind.ESK_REMS_FORM_OVERDUE)
    second = start_session(
        prescription=rx, administered_by=clinician, planned_dose=planned(rx, "2026-06-04"), now=at("2026-06-04T08:55")
    ).session
    assert second.care_setting == "inpatient"  # what carries over from the last session


def test_an_outpatient_esketamine_session_needs_a_rems_certified_clinic(patient, clinician):
    from tracker.services.errors import ServiceError

    rx = esketamine_course(patient, clinician)
    clinic = patient.clinic
    clinic.rems_certification = ""
    clinic.save()
    with pytest.raises(ServiceError) as refused:
        start_session(prescription=rx, administered_by=clinician, planned_dose=planned(rx), now=at("2026-06-01T08:55"))
    assert "no Spravato REMS certification on record" in refused.value.message_dict["care_setting"][0]
    assert not InClinicSession.objects.exists()


def test_the_rems_check_applies_however_the_catalogue_capitalises_esketamine(patient, clinician):
    """The REMS rule and the dose checks share one esketamine test (Drug.is_esketamine), case-insensitive."""
    from tracker.services.errors import ServiceError

    rx = esketamine_course(patient, clinician)
    Drug.objects.filter(pk=rx.drug_id).update(name="Esketamine")
    rx.refresh_from_db()
    clinic = patient.clinic
    clinic.rems_certification = ""
    clinic.save()
    with pytest.raises(ServiceError) as refused:
        start_session(prescription=rx, administered_by=clinician, planned_dose=planned(rx), now=at("2026-06-01T08:55"))
    assert "no Spravato REMS certification on record" in refused.value.message_dict["care_setting"][0]
