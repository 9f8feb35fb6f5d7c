"""The API tests' world: one clinic's patient A with a full course, and everyone who might ask.

Not a test module of its own; the API test modules import ``world_fixture`` (the ``world``
fixture) and ``client_for``.
Personas: anonymous, patient A and patient B (same clinic), a clinician of the clinic and one
of another clinic. Every caller but the anonymous one authenticates with a DRF token.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.factories import drug
from tracker.models import (
    Assessment,
    DoseEvent,
    DoseSchedule,
    Flag,
    InClinicSession,
    Patient,
    PlannedDose,
    Prescription,
    WeightMeasurement,
)
from tracker.models import SideEffectReport as SideEffect
from tracker.services.assessments import EffectReport, report_side_effects, submit_assessment
from tracker.services.doses import record_dose
from tracker.services.measurements import record_weight
from tracker.services.prescriptions import ScheduleSpec, prescribe
from tracker.services.sessions import complete_session, record_dosing, start_session

PERSONAS = ("anonymous", "patient_a", "patient_b", "clinician", "other_clinician")


@dataclass
class World:
    patient_a: Patient
    patient_b: Patient
    rx: Prescription
    esketamine: Prescription
    schedule: DoseSchedule
    planned: PlannedDose
    open_planned: PlannedDose
    event: DoseEvent
    assessment: Assessment
    side_effect: SideEffect
    flag: Flag
    session: InClinicSession
    weight: WeightMeasurement
    users: dict[str, object]


def build_world(clinic, other_clinic, clinician, other_clinician) -> World:
    """Patient A's course three days in: a dose taken, a PHQ-9 with item 9 > 0 (so a flag), a side effect,
    a weight."""
    now = timezone.now()
    start = (now - dt.timedelta(days=3)).date()
    users = {"clinician": clinician.user, "other_clinician": other_clinician.user}
    patients = {}
    for name, number in (("patient_a", "N-1001"), ("patient_b", "N-1002")):
        user = factories.UserFactory(username=name.replace("_", "-"))
        patients[name] = factories.PatientFactory(
            clinic=clinic, responsible_clinician=clinician, record_number=number, user=user
        )
        users[name] = user
    a = patients["patient_a"]
    planned_at = now - dt.timedelta(days=4)
    rx = prescribe(
        patient=a,
        drug=drug("sertraline"),
        dose=Decimal("50"),
        start_date=start,
        prescriber=clinician,
        schedules=[ScheduleSpec(times_of_day=("08:00", "20:00"))],
        indication="Major depressive disorder",
        now=planned_at,
    )
    esketamine = prescribe(
        patient=a,
        drug=drug("esketamine"),
        dose=Decimal("56"),
        start_date=start,
        prescriber=clinician,
        schedules=[ScheduleSpec(kind="weekdays", weekdays=(1, 4), times_of_day=("10:00",))],
        now=planned_at,
    )
    doses = list(rx.planned_doses.filter(due_at__lt=now - dt.timedelta(hours=13)).order_by("due_at"))
    event = record_dose(
        prescription=rx, occurred_at=doses[0].due_at, reporter="patient", recorded_by=users["patient_a"]
    )
    submitted = submit_assessment(patient=a, instrument="phq9", answers=[1, 1, 1, 1, 1, 1, 1, 1, 1], source="patient")
    (side_effect,) = report_side_effects(patient=a, effects=[EffectReport(effect="nausea", severity="mild")])
    # An esketamine session at the clinic: BP, two devices, discharged after the observation.
    session = start_session(
        prescription=esketamine,
        administered_by=clinician,
        bp_before_systolic=124,
        bp_before_diastolic=78,
        now=now - dt.timedelta(hours=3),
    ).session
    record_dosing(
        session=session, first_device_at=now - dt.timedelta(hours=3), devices=2, now=now - dt.timedelta(hours=3)
    )
    complete_session(
        session=session,
        discharge_at=now - dt.timedelta(minutes=30),
        recorded_by=clinician.user,
        monitoring={
            "bp_40min_systolic": 130,
            "bp_40min_diastolic": 82,
            "bp_40min_at": now - dt.timedelta(hours=2, minutes=20),
            "bp_discharge_systolic": 122,
            "bp_discharge_diastolic": 76,
            "moaas_lowest": 4,
            "moaas_at_discharge": 5,
            "dissociation_resolved": True,
            "respiratory_depression": False,
            "no_driving_acknowledged": True,
        },
    )
    weight = record_weight(
        patient=a, weight_kg=Decimal("72.4"), measured_at=planned_at, recorded_by=clinician.user, now=planned_at
    )
    return World(
        patient_a=a,
        patient_b=patients["patient_b"],
        rx=rx,
        esketamine=esketamine,
        schedule=rx.schedules.get(),
        planned=doses[0],
        open_planned=doses[1],
        event=event,
        assessment=submitted.assessment,
        side_effect=side_effect,
        flag=Flag.objects.get(patient=a, kind="scale.suicidality"),
        session=InClinicSession.objects.get(pk=session.pk),
        weight=weight,
        users=users,
    )


@pytest.fixture(name="world")
def world_fixture(clinic, other_clinic, clinician, other_clinician) -> World:
    # A patient of the other clinic, so the other clinician's lists are not trivially empty.
    factories.PatientFactory(clinic=other_clinic, responsible_clinician=other_clinician, record_number="S-1")
    return build_world(clinic, other_clinic, clinician, other_clinician)


def client_for(world: World, persona: str) -> APIClient:
    """A client authenticated by token as ``persona`` (none for anonymous)."""
    client = APIClient()
    if persona != "anonymous":
        token, _ = Token.objects.get_or_create(user=world.users[persona])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
