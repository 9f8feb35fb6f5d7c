"""Clinic isolation in the admin: a clinician of one clinic never reaches another clinic's rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tracker.models import Assessment, DoseEvent, DoseSchedule, Flag, FlagKind, Patient, Prescription, SideEffectReport
from tracker.services.prescriptions import prescribe


@dataclass
class Course:
    """One patient's course with a row of every clinical model."""

    patient: Patient
    prescription: Prescription
    schedule: DoseSchedule
    dose_event: DoseEvent
    assessment: Assessment
    side_effect: SideEffectReport
    flag: Flag

    def records(self) -> dict[str, object]:
        return {
            "patient": self.patient,
            "prescription": self.prescription,
            "doseschedule": self.schedule,
            "doseevent": self.dose_event,
            "assessment": self.assessment,
            "sideeffectreport": self.side_effect,
            "flag": self.flag,
        }


def make_course(patient: Patient, prescriber, *, flag_key: str | None = None) -> Course:
    """Build a course through the prescribing service, plus one row of each reported kind."""
    now = timezone.now()
    rx = prescribe(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("50"),
        start_date=timezone.localdate() - dt.timedelta(days=7),
        prescriber=prescriber,
        indication="Major depressive disorder",
    )
    event = DoseEvent.objects.create(
        patient=patient,
        prescription=rx,
        occurred_at=now - dt.timedelta(hours=2),
        local_date=timezone.localdate(),
        reporter=DoseEvent.Reporter.PATIENT,
    )
    assessment = Assessment.objects.create(
        patient=patient,
        instrument="phq9",
        answers=[1, 1, 1, 1, 1, 1, 1, 1, 0],
        completed_at=now - dt.timedelta(days=1),
        source=Assessment.Source.PATIENT,
    )
    side_effect = SideEffectReport.objects.create(
        patient=patient, prescription=rx, effect="nausea", severity="mild", reported_at=now
    )
    flag = Flag.objects.create(
        patient=patient,
        kind=FlagKind.SE_SEVERE,
        severity=30,
        dedup_key=flag_key or f"test:{patient.pk}",
        message="Severe nausea reported.",
        action="Call the patient today.",
    )
    return Course(patient, rx, rx.schedules.get(), event, assessment, side_effect, flag)


@pytest.fixture
def course(patient, clinician) -> Course:
    return make_course(patient, clinician)


@pytest.fixture
def other_course(other_patient, other_clinician) -> Course:
    return make_course(other_patient, other_clinician)


def admin_url(name: str, model: str, *args: object) -> str:
    return reverse(f"admin:tracker_{model}_{name}", args=args)


@pytest.fixture
def north(client, clinician):
    """A client logged in as the Northside prescriber."""
    client.force_login(clinician.user)
    return client


class TestOtherClinicIsInvisible:
    def test_patient_changelist_and_search_show_only_own_clinic(self, north, course, other_course):
        response = north.get(admin_url("changelist", "patient"))
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [course.patient]
        assert other_course.patient.record_number not in response.content.decode()

        for term in (other_course.patient.family_name, other_course.patient.record_number):
            response = north.get(admin_url("changelist", "patient"), {"q": term})
            assert other_course.patient not in response.context["cl"].result_list

    @pytest.mark.parametrize(
        "model", ["patient", "prescription", "doseschedule", "doseevent", "assessment", "sideeffectreport", "flag"]
    )
    def test_changelists_hold_only_own_clinic_rows(self, north, course, other_course, model):
        response = north.get(admin_url("changelist", model))
        assert response.status_code == 200
        rows = list(response.context["cl"].result_list)
        assert course.records()[model] in rows
        assert other_course.records()[model] not in rows

    @pytest.mark.parametrize(
        "model", ["patient", "prescription", "doseschedule", "doseevent", "assessment", "sideeffectreport", "flag"]
    )
    def test_object_urls_of_other_clinic_answer_404(self, north, course, other_course, model):
        other = other_course.records()[model]
        history_id = other.history.latest().history_id
        urls = [
            admin_url("change", model, other.pk),
            admin_url("history", model, other.pk),
            admin_url("delete", model, other.pk),
            admin_url("simple_history", model, other.pk, history_id),
        ]
        for url in urls:
            assert north.get(url).status_code == 404, url
        # Reverting to an old version is a POST to the version URL: also nothing there.
        assert north.post(urls[-1], {}).status_code == 404
        # Own rows answer, so the 404s above are the scoping and not a broken URL.
        own = course.records()[model]
        assert north.get(admin_url("change", model, own.pk)).status_code == 200
        assert north.get(admin_url("history", model, own.pk)).status_code == 200

    def test_custom_change_dose_url_of_other_clinic_answers_404(self, north, other_course):
        url = reverse("admin:tracker_prescription_change_dose", args=[other_course.prescription.pk])
        assert north.get(url).status_code == 404
        response = north.post(url, {"new_dose": "100", "effective_date": "2030-01-01", "reason": "titration"})
        assert response.status_code == 404
        assert not Prescription.objects.filter(replaces=other_course.prescription).exists()

    def test_unknown_id_answers_the_same_404(self, north, course):
        assert north.get(admin_url("change", "patient", 999_999)).status_code == 404

    def test_foreign_key_choices_are_limited_to_own_clinic(self, client, clinic, other_clinician, course, other_course):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        form = client.get(admin_url("add", "patient")).context["adminform"].form
        choices = set(form.fields["responsible_clinician"].queryset)
        assert manager in choices
        assert other_clinician not in choices

        client.force_login(course.prescription.prescriber.user)
        form = client.get(admin_url("add", "prescription")).context["form"]
        assert list(form.fields["patient"].queryset) == [course.patient]

    def test_list_filter_offers_only_own_clinicians(self, north, clinician, other_clinician, course, other_course):
        content = north.get(admin_url("changelist", "patient")).content.decode()
        assert str(clinician) in content
        assert str(other_clinician) not in content

    def test_flag_assignment_choices_are_own_clinic(self, client, clinic, other_clinician, course):
        nurse = factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-north")
        client.force_login(nurse.user)
        form = client.get(admin_url("change", "flag", course.flag.pk)).context["adminform"].form
        assert nurse in form.fields["assigned_to"].queryset
        assert other_clinician not in form.fields["assigned_to"].queryset


class TestWhoSeesWhat:
    def test_staff_without_clinic_membership_sees_nothing(self, client, course):
        user = factories.UserFactory(username="staff-only", is_staff=True)
        # Even with model permissions, no membership means no rows.
        user.user_permissions.add(Permission.objects.get(codename="view_patient"))
        client.force_login(user)
        assert client.get(admin_url("changelist", "patient")).status_code == 403
        assert client.get(admin_url("change", "patient", course.patient.pk)).status_code in (403, 404)
        assert "Patients" not in client.get(reverse("admin:index")).content.decode()

    def test_superuser_sees_every_clinic(self, client, course, other_course):
        admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
        client.force_login(admin_user)
        rows = set(client.get(admin_url("changelist", "patient")).context["cl"].result_list)
        assert rows == {course.patient, other_course.patient}

    def test_inactive_clinician_sees_nothing(self, client, clinician, course):
        clinician.is_active = False
        clinician.save()
        client.force_login(clinician.user)
        assert client.get(admin_url("changelist", "patient")).status_code == 403

    def test_clinicians_of_same_clinic_only(self, north, clinician, other_clinician):
        rows = list(north.get(admin_url("changelist", "clinician")).context["cl"].result_list)
        assert rows == [clinician]
        assert north.get(admin_url("change", "clinician", other_clinician.pk)).status_code == 404

    def test_clinics_are_superuser_only(self, north, clinic):
        assert north.get(admin_url("changelist", "clinic")).status_code == 403
        assert north.get(admin_url("change", "clinic", clinic.pk)).status_code in (403, 404)

    def test_site_header_and_disclaimer(self, north):
        content = north.get(reverse("admin:index")).content.decode()
        assert "Treatment-course tracker" in content
        assert "does not make clinical decisions" in content


def test_own_history_version_is_viewable_but_not_revertible(north, course):
    version = course.prescription.history.earliest()
    url = admin_url("simple_history", "prescription", course.prescription.pk, version.history_id)
    assert north.get(url).status_code == 200
    assert north.post(url, {"dose": "150", "_change_history": "1"}).status_code == 403
    course.prescription.refresh_from_db()
    assert course.prescription.dose == Decimal("50")


@pytest.mark.parametrize(
    "model",
    [
        "clinic",
        "clinician",
        "drug",
        "patient",
        "prescription",
        "doseschedule",
        "doseevent",
        "assessment",
        "sideeffectreport",
        "flag",
    ],
)
def test_every_admin_page_renders_for_a_superuser(client, course, model):
    """Smoke test: changelist, add and change pages answer without a server error."""
    client.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    obj = {
        "clinic": course.patient.clinic,
        "clinician": course.prescription.prescriber,
        "drug": course.prescription.drug,
        **course.records(),
    }[model]
    assert client.get(admin_url("changelist", model)).status_code == 200
    assert client.get(admin_url("changelist", model), {"q": "a"}).status_code == 200
    assert client.get(admin_url("add", model)).status_code in (200, 403)
    assert client.get(admin_url("change", model, obj.pk)).status_code == 200
    assert client.get(admin_url("history", model, obj.pk)).status_code == 200
