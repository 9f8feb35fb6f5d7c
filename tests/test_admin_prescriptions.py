"""Prescribing and dose changes from the admin go through the services, as new versions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tests.test_admin_scoping import admin_url
from tracker.models import DoseSchedule, PlannedDose, Prescription
from tracker.services.prescriptions import prescribe

ABOVE_MAXIMUM = "250 mg is above the maximum for Sertraline: 200 mg per local calendar day."


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


@pytest.fixture
def rx(patient, clinician) -> Prescription:
    return prescribe(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("50"),
        start_date=timezone.localdate() - dt.timedelta(days=14),
        prescriber=clinician,
    )


def prescribe_url(patient) -> str:
    return reverse("admin:tracker_prescription_prescribe", args=[patient.pk])


def change_dose_url(rx: Prescription) -> str:
    return reverse("admin:tracker_prescription_change_dose", args=[rx.pk])


class TestPrescribe:
    def form_data(self, patient, **overrides) -> dict[str, str]:
        return {
            "drug": str(factories.drug("sertraline").pk),
            "regimen": "times",
            "continuation_every_weeks": "2",
            "dose": "50",
            "route": "",
            "times_of_day": "08:00, 20:00",
            "start_date": timezone.localdate().isoformat(),
            "end_date": "",
            "indication": "Depression",
            **overrides,
        }

    def test_add_creates_prescription_schedule_and_planned_doses(self, north, clinician, patient):
        response = north.post(prescribe_url(patient), self.form_data(patient))
        rx = Prescription.objects.get(patient=patient)
        assert response.status_code == 302
        assert response["Location"] == admin_url("change", "prescription", rx.pk)
        assert rx.prescriber == clinician
        assert rx.route == "oral"
        schedule = rx.schedules.get()
        assert schedule.kind == DoseSchedule.Kind.DAILY
        assert schedule.times_of_day == ["08:00", "20:00"]
        assert PlannedDose.objects.filter(prescription=rx).exists()

    def test_dose_above_maximum_is_shown_beside_the_dose(self, north, patient):
        response = north.post(prescribe_url(patient), self.form_data(patient, dose="250"))
        assert response.status_code == 200
        assert response.context["form"].errors["dose"] == [ABOVE_MAXIMUM]
        assert ABOVE_MAXIMUM in response.content.decode()
        assert not Prescription.objects.filter(patient=patient).exists()

    def test_daily_total_above_maximum_is_shown(self, north, patient):
        # Two doses of 150 mg are 300 mg a day: the schedule's rule, in its own words.
        response = north.post(prescribe_url(patient), self.form_data(patient, dose="150"))
        assert response.status_code == 200
        message = (
            "2 doses of 150 mg make 300 mg a day, above the maximum for Sertraline: 200 mg per local calendar day."
        )
        assert response.context["form"].errors["times_of_day"] == [message]
        assert not Prescription.objects.filter(patient=patient).exists()

    def test_bad_time_of_day_is_shown(self, north, patient):
        response = north.post(prescribe_url(patient), self.form_data(patient, times_of_day="8am"))
        assert response.context["form"].errors["times_of_day"] == [
            'Write each time as HH:MM on a 24-hour clock, e.g. "08:00".'
        ]

    def test_other_clinic_patient_cannot_be_chosen(self, north, other_patient):
        response = north.post(prescribe_url(other_patient), self.form_data(other_patient))
        assert response.status_code == 404  # as for a patient who does not exist
        chooser = north.get(admin_url("add", "prescription"), {"patient": other_patient.pk})
        assert "patient" in chooser.context["form"].errors
        assert not Prescription.objects.filter(patient=other_patient).exists()

    def test_nurse_cannot_prescribe(self, client, clinic):
        nurse = factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-north")
        client.force_login(nurse.user)
        assert client.get(admin_url("add", "prescription")).status_code == 403
        assert client.get(prescribe_url(factories.PatientFactory(clinic=clinic))).status_code == 403


class TestExistingPrescription:
    def test_dose_is_read_only_on_the_change_page(self, north, rx):
        response = north.get(admin_url("change", "prescription", rx.pk))
        form = response.context["adminform"].form
        assert "dose" not in form.fields
        assert set(form.fields) == {"indication", "clinician_marked_failed"}
        assert change_dose_url(rx) in response.content.decode()  # the "Change dose" link

        north.post(admin_url("change", "prescription", rx.pk), {"indication": "MDD", "dose": "150"})
        rx.refresh_from_db()
        assert rx.dose == Decimal("50")
        assert rx.indication == "MDD"


class TestChangeDose:
    def test_creates_a_new_version_linked_to_the_old(self, north, clinician, rx):
        effective = timezone.localdate()
        response = north.post(
            change_dose_url(rx),
            {"new_dose": "100", "effective_date": effective.isoformat(), "reason": "Titration after two weeks"},
        )
        new = Prescription.objects.get(replaces=rx)
        assert response.status_code == 302
        assert response["Location"] == admin_url("change", "prescription", new.pk)
        assert new.dose == Decimal("100")
        assert new.start_date == effective
        assert new.change_reason == "Titration after two weeks"
        assert new.prescriber == clinician
        rx.refresh_from_db()
        assert rx.status == Prescription.Status.SUPERSEDED
        assert rx.replaced_by == new
        assert rx.dose == Decimal("50")  # the old version keeps its dose

        # Both pages show the chain of versions, linking to each other.
        new_page = north.get(admin_url("change", "prescription", new.pk)).content.decode()
        assert admin_url("change", "prescription", rx.pk) in new_page
        old_page = north.get(admin_url("change", "prescription", rx.pk)).content.decode()
        assert admin_url("change", "prescription", new.pk) in old_page
        assert change_dose_url(rx) not in old_page  # superseded: no further dose change from here

    def test_dose_above_maximum_is_refused_with_the_model_message(self, north, rx):
        response = north.post(
            change_dose_url(rx),
            {"new_dose": "250", "effective_date": timezone.localdate().isoformat(), "reason": "Titration"},
        )
        assert response.status_code == 200
        assert response.context["form"].errors["new_dose"] == [ABOVE_MAXIMUM]
        assert ABOVE_MAXIMUM in response.content.decode()
        assert not Prescription.objects.filter(replaces=rx).exists()
        rx.refresh_from_db()
        assert rx.status == Prescription.Status.ACTIVE

    def test_effective_date_before_start_is_shown_on_that_field(self, north, rx):
        response = north.post(
            change_dose_url(rx),
            {"new_dose": "100", "effective_date": (rx.start_date - dt.timedelta(days=1)).isoformat(), "reason": "x"},
        )
        assert response.context["form"].errors["effective_date"] == [
            "A dose change cannot take effect before the prescription started."
        ]

    def test_superseded_version_cannot_change_again(self, north, rx):
        north.post(
            change_dose_url(rx), {"new_dose": "100", "effective_date": timezone.localdate(), "reason": "Titration"}
        )
        response = north.post(
            change_dose_url(rx), {"new_dose": "150", "effective_date": timezone.localdate(), "reason": "Titration"}
        )
        assert response.status_code == 200
        assert "Only an active prescription can have its dose changed." in response.content.decode()
        assert Prescription.objects.filter(patient=rx.patient).count() == 2

    def test_non_prescriber_gets_403(self, client, clinic, rx):
        nurse = factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-north")
        client.force_login(nurse.user)
        assert client.get(change_dose_url(rx)).status_code == 403

    def test_superuser_names_the_prescriber(self, client, clinician, rx):
        root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
        client.force_login(root)
        response = client.get(change_dose_url(rx))
        assert "prescriber" in response.context["form"].fields
        client.post(
            change_dose_url(rx),
            {
                "new_dose": "100",
                "effective_date": timezone.localdate(),
                "reason": "Titration",
                "prescriber": clinician.pk,
            },
        )
        assert Prescription.objects.get(replaces=rx).prescriber == clinician
