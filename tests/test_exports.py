"""CSV exports: a patient's course and the clinic's adherence and scores, exactly, with formula guards."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from tests import factories
from tests.dosing import at
from tests.symptoms import phq9, side_effect
from tracker import side_effect_catalogue
from tracker.admin.exports import csv_cell
from tracker.models import Flag, FlagKind, PlannedDose
from tracker.services.assessments import submit_assessment
from tracker.services.prescriptions import prescribe

CLINIC_URL = reverse("admin:tracker_patient_clinic_export")


def gad7(patient, when: str, answers: list[int]):
    return submit_assessment(
        patient=patient, instrument="gad7", answers=answers, source="patient", completed_at=at(when), now=at(when)
    ).assessment


@pytest.fixture
def ada(clinic, clinician):
    return factories.PatientFactory(
        clinic=clinic, record_number="N-0100", given_name="Ada", family_name="Lovelace", responsible_clinician=clinician
    )


@pytest.fixture
def small_course(ada, clinician):
    """Two planned doses (1 and 2 June, 08:00 London): one taken, one missed; a PHQ-9, a side effect, a flag."""
    rx = prescribe(
        patient=ada,
        drug=factories.drug("sertraline"),
        dose=Decimal("50"),
        start_date=dt.date(2026, 6, 1),
        end_date=dt.date(2026, 6, 2),
        prescriber=clinician,
        indication="Major depressive disorder",
        now=at("2026-05-31T00:00"),
    )
    first, second = PlannedDose.objects.filter(prescription=rx).order_by("due_at")
    PlannedDose.objects.filter(pk=first.pk).update(status=PlannedDose.Status.TAKEN)
    PlannedDose.objects.filter(pk=second.pk).update(status=PlannedDose.Status.MISSED)
    assessment = phq9(ada, "2026-06-01T10:00", 12)
    effect = side_effect(ada, "2026-06-03T10:00", "nausea", "moderate", description="=1+2")
    flag = Flag.objects.create(
        patient=ada,
        kind=FlagKind.DOSE_MISSED,
        severity=20,
        dedup_key="export:missed",
        message="-2 doses behind",
        action="Call.",
        raised_at=at("2026-06-02T13:00"),
    )
    return rx, assessment, effect, flag


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def test_course_csv_content(north, ada, small_course):
    rx, assessment, effect, flag = small_course
    response = north.get(reverse("admin:tracker_patient_export", args=[ada.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="course-N-0100-')
    assert response.content.decode() == (
        "record,id,date,time_utc,item,value,unit,status,detail\n"
        f"prescription,{rx.pk},2026-06-01,,sertraline,50,mg,active,Major depressive disorder; until 2026-06-02\n"
        "doses,,2026-06-01,,planned doses,1,doses,taken=1;missed=0;skipped=0;pending=0;unplanned=0,\n"
        "doses,,2026-06-02,,planned doses,1,doses,taken=0;missed=1;skipped=0;pending=0;unplanned=0,\n"
        f"assessment,{assessment.pk},2026-06-01,10:00,PHQ-9,12,points,{assessment.band},Patient-reported\n"
        f"side_effect,{effect.pk},2026-06-03,10:00,{side_effect_catalogue.label('nausea')},,,moderate,'=1+2\n"
        f"flag,{flag.pk},2026-06-02,13:00,Missed dose,Warning,,open,'-2 doses behind\n"
    )


def test_clinic_csv_content(north, clinic, ada, small_course, other_patient, other_clinician):
    bob = factories.PatientFactory(
        clinic=clinic, record_number="N-0101", given_name="Bob", family_name="=cmd|'/C calc'!A0"
    )
    gad7(bob, "2026-06-02T10:00", [1] * 7)
    gad7(bob, "2026-06-02T23:30", [2] * 7)  # 00:30 on 3 June in London: outside the range
    factories.PatientFactory(clinic=clinic, record_number="N-0102")  # nothing in the range: no row
    phq9(other_patient, "2026-06-01T10:00", 20)  # another clinic: never in this export

    response = north.get(CLINIC_URL, {"start": "2026-06-01", "end": "2026-06-02"})

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="northside-adherence-20260601-20260602.csv"'
    assert response.content.decode() == (
        "record_number,family_name,given_name,planned,taken,missed,skipped,adherence_percent,"
        "phq9_first,phq9_last,gad7_first,gad7_last,madrs_first,madrs_last\n"
        "N-0101,'=cmd|'/C calc'!A0,Bob,0,0,0,0,,,,7,7,,\n"
        "N-0100,Lovelace,Ada,2,1,1,0,50,12,12,,,,\n"
    )


class TestClinicExportParameters:
    def test_without_dates_the_form_is_shown(self, north):
        response = north.get(CLINIC_URL)
        assert response.status_code == 200
        assert 'name="start"' in response.content.decode()

    @pytest.mark.parametrize(
        ("params", "field", "message"),
        [
            ({"start": "yesterday", "end": "2026-06-02"}, "start", "Enter a valid date."),
            ({"start": "2026-06-01"}, "end", "This field is required."),
            ({"start": "2026-06-05", "end": "2026-06-01"}, "end", "The end date cannot be before the start date."),
            ({"start": "2025-01-01", "end": "2026-06-01"}, "end", "Export at most 366 days at a time."),
        ],
    )
    def test_bad_dates_answer_400_with_the_reason(self, north, params, field, message):
        response = north.get(CLINIC_URL, params)
        assert response.status_code == 400
        assert response.context["form"].errors[field] == [message]
        assert message in response.content.decode()

    def test_not_for_anonymous_or_patients(self, client, ada):
        assert client.get(CLINIC_URL, {"start": "2026-06-01", "end": "2026-06-02"}).status_code == 302
        client.force_login(factories.UserFactory(username="patient-user"))  # not staff
        response = client.get(reverse("admin:tracker_patient_export", args=[ada.pk]))
        assert response.status_code == 302
        assert "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (12, "12"),
        (None, ""),
    ],
)
def test_csv_cell_guards_formulas(value, expected):
    assert csv_cell(value) == expected


def test_course_csv_gives_the_fibser_burden_never_a_sum(north, ada, small_course):
    from tests.symptoms import fibser

    check_in = fibser(ada, "2026-06-02T10:00", 4)  # frequency 4, intensity 4, burden 4: a "total" would be 12
    content = north.get(reverse("admin:tracker_patient_export", args=[ada.pk])).content.decode()
    (row,) = [line for line in content.splitlines() if line.startswith(f"assessment,{check_in.pk},")]
    assert row == f"assessment,{check_in.pk},2026-06-02,10:00,FIBSER,4,burden (0-6),{check_in.band},Patient-reported"


def test_clinic_csv_adherence_is_the_sweeps_taken_share(north, ada, small_course):
    # 1 taken, 1 missed, 1 skipped: the §7 share counts skipped doses as not taken (1 of 3).
    rx = small_course[0]
    PlannedDose.objects.create(
        patient=ada,
        prescription=rx,
        schedule=rx.schedules.first(),
        due_at=at("2026-06-02T12:00"),
        local_date=dt.date(2026, 6, 2),
        deadline=at("2026-06-02T18:00"),
        status=PlannedDose.Status.SKIPPED,
    )
    content = north.get(CLINIC_URL, {"start": "2026-06-01", "end": "2026-06-02"}).content.decode()
    assert "N-0100,Lovelace,Ada,3,1,1,1,33," in content
