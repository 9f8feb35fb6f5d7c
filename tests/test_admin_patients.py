"""The patient list and page: clinic of new patients, constant query count, the course inlines."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests import factories
from tests.test_admin_scoping import admin_url, make_course
from tracker.models import DoseEvent, Flag, FlagKind, Patient


@pytest.fixture
def manager(clinic):
    return factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")


def new_patient_data(**overrides) -> dict[str, str]:
    return {
        "record_number": "N-0100",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "date_of_birth": "1990-04-01",
        "timezone": "Europe/London",
        "weight_kg": "",
        "email": "",
        "responsible_clinician": "",
        "is_active": "on",
        **overrides,
    }


def change_patient_data(client, patient, clinician, **overrides) -> dict[str, str]:
    """The patient page's form as posted back, with ``overrides`` (``client`` is logged in)."""
    page = client.get(admin_url("change", "patient", patient.pk))
    return {
        **new_patient_data(
            record_number=patient.record_number,
            given_name=patient.given_name,
            family_name=patient.family_name,
            date_of_birth=patient.date_of_birth.isoformat(),
            responsible_clinician=str(clinician.pk),
            **overrides,
        ),
        # The read-only inlines' management forms, as the page renders them.
        **{
            f.html_name: f.value()
            for formset in page.context["inline_admin_formsets"]
            for f in formset.formset.management_form
        },
    }


class TestCreatePatient:
    def test_lands_in_the_clinicians_clinic(self, client, manager, clinic, other_clinic):
        client.force_login(manager.user)
        page = client.get(admin_url("add", "patient"))
        assert "clinic" not in page.context["adminform"].form.fields  # not choosable

        # Even a forged clinic field is ignored.
        response = client.post(admin_url("add", "patient"), new_patient_data(clinic=str(other_clinic.pk)))
        assert response.status_code == 302
        created = Patient.objects.get(record_number="N-0100")
        assert created.clinic == clinic
        assert created.history.latest().history_user == manager.user

    def test_duplicate_record_number_in_clinic_is_a_form_error(self, client, manager, patient):
        client.force_login(manager.user)
        response = client.post(admin_url("add", "patient"), new_patient_data(record_number=patient.record_number))
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["record_number"] == [
            "Another patient of this clinic already has this record number."
        ]

    def test_same_record_number_in_another_clinic_is_fine(self, client, manager, other_patient):
        client.force_login(manager.user)
        response = client.post(admin_url("add", "patient"), new_patient_data(record_number=other_patient.record_number))
        assert response.status_code == 302

    def test_responsible_clinician_of_another_clinic_is_refused(self, client, manager, other_clinician):
        client.force_login(manager.user)
        response = client.post(
            admin_url("add", "patient"), new_patient_data(responsible_clinician=str(other_clinician.pk))
        )
        assert response.status_code == 200
        assert "responsible_clinician" in response.context["adminform"].form.errors
        assert not Patient.objects.filter(record_number="N-0100").exists()

    def test_superuser_chooses_the_clinic(self, client, other_clinic):
        root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
        client.force_login(root)
        response = client.post(admin_url("add", "patient"), new_patient_data(clinic=str(other_clinic.pk)))
        assert response.status_code == 302
        assert Patient.objects.get(record_number="N-0100").clinic == other_clinic

    def test_prescriber_cannot_add_patients(self, client, clinician):
        client.force_login(clinician.user)
        assert client.get(admin_url("add", "patient")).status_code == 403


def make_patients(clinic, count: int) -> None:
    """Patients with their own responsible clinician and two flags each (one resolved)."""
    for _ in range(count):
        patient = factories.PatientFactory(
            clinic=clinic, responsible_clinician=factories.ClinicianFactory(clinic=clinic)
        )
        for status in (Flag.Status.OPEN, Flag.Status.RESOLVED):
            Flag.objects.create(
                patient=patient,
                kind=FlagKind.DOSE_MISSED,
                severity=20,
                status=status,
                resolved_at=timezone.now() if status == Flag.Status.RESOLVED else None,
                dedup_key=f"test:{patient.pk}:{status}",
                message="Missed dose.",
                action="Check in with the patient.",
            )


@pytest.mark.parametrize("count", [3, 10])
def test_changelist_query_count_does_not_grow_with_patients(
    client, clinic, clinician, count, django_assert_num_queries
):
    make_patients(clinic, count)
    client.force_login(clinician.user)
    with django_assert_num_queries(10):
        # 1. the session
        # 2. the logged-in user
        # 3. the user's clinic membership (cached on the request)
        # 4. the user's own permissions
        # 5. the user's group permissions
        # 6. the responsible-clinician filter: clinicians in the list, with their users
        # 7. the paginator's count
        # 8. the unfiltered total ("N total"), the same count here
        # 9. the page of patients with their clinician, user and unresolved-flag count
        # 10. the timezone filter's distinct values
        response = client.get(admin_url("changelist", "patient"))
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert len(rows) == count
    assert {row.unresolved_flag_count for row in rows} == {1}


class TestPatientPage:
    def test_shows_the_course_inlines(self, client, patient, clinician):
        course = make_course(patient, clinician)
        client.force_login(clinician.user)
        response = client.get(admin_url("change", "patient", patient.pk))
        assert response.status_code == 200
        content = response.content.decode()
        assert admin_url("change", "prescription", course.prescription.pk) in content
        assert admin_url("change", "flag", course.flag.pk) in content
        assert course.assessment.band in content
        names = {formset.opts.__class__.__name__ for formset in response.context["inline_admin_formsets"]}
        assert names == {
            "OpenFlagInline",
            "PrescriptionInline",
            "RecentDoseEventInline",
            "AssessmentInline",
            "WeightInline",
        }

    def test_recent_dose_events_are_capped(self, client, patient, clinician):
        course = make_course(patient, clinician)
        now = timezone.now()
        for hours in range(1, 30):
            DoseEvent.objects.create(
                patient=patient,
                prescription=course.prescription,
                occurred_at=now - dt.timedelta(hours=hours * 12),
                local_date=timezone.localdate(),
                reporter=DoseEvent.Reporter.PATIENT,
            )
        client.force_login(clinician.user)
        response = client.get(admin_url("change", "patient", patient.pk))
        (events,) = [f for f in response.context["inline_admin_formsets"] if f.opts.model is DoseEvent]
        assert len(events.formset.forms) == 20
        shown = [form.instance.occurred_at for form in events.formset.forms]
        assert shown == sorted(shown, reverse=True)

    def test_a_prescriber_sees_the_page_read_only(self, client, patient, clinician):
        client.force_login(clinician.user)
        response = client.get(admin_url("change", "patient", patient.pk))
        assert response.context["has_change_permission"] is False


@pytest.mark.django_db
def test_changing_the_timezone_in_the_admin_replans_future_doses(client, manager, patient, clinician):
    from tests.dosing import daily_course
    from tracker.models import PlannedDose

    rx = daily_course(patient, clinician, start=timezone.localdate().isoformat())  # 08:00 London
    client.force_login(manager.user)
    response = client.post(
        admin_url("change", "patient", patient.pk),
        change_patient_data(client, patient, clinician, timezone="Asia/Tokyo"),
    )
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    live = PlannedDose.objects.exclude(status=PlannedDose.Status.CANCELLED)
    future = live.filter(prescription=rx, due_at__gt=timezone.now()).order_by("due_at").first()
    assert future.due_at.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime("%H:%M") == "08:00"
