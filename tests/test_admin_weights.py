"""Weights in the admin: "Add weight" through the service, clinic isolation, entered in error."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from tests import factories
from tests.dosing import at
from tests.test_admin_scoping import admin_url
from tests.test_weights import RANGE_MESSAGE, weigh
from tracker.models import Patient, WeightMeasurement

pytestmark = pytest.mark.django_db


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def add_url(patient=None) -> str:
    url = admin_url("add", "weightmeasurement")
    return f"{url}?patient={patient.pk}" if patient else url


class TestAdmin:
    def test_patient_page_links_to_add_weight_and_lists_weights(self, north, patient):
        weight = weigh(patient, "2026-06-01T09:00", "72.4", note="Shoes on")
        content = north.get(admin_url("change", "patient", patient.pk)).content.decode()
        assert add_url(patient) in content
        assert admin_url("change", "weightmeasurement", weight.pk) in content
        assert "Shoes on" in content

    def test_add_weight_records_through_the_service_in_the_patients_zone(self, north, clinician, clinic):
        patient = factories.PatientFactory(clinic=clinic, timezone="America/New_York", record_number="N-NY")
        page = north.get(add_url(patient))
        assert page.status_code == 200
        assert str(page.context["form"]["patient"].value()) == str(patient.pk)
        response = north.post(
            add_url(patient),
            {"patient": patient.pk, "weight_kg": "81.3", "measured_at": "2026-06-01T09:00", "note": "Clinic scales"},
        )
        assert response.status_code == 302
        assert response["Location"] == admin_url("change", "patient", patient.pk)
        weight = WeightMeasurement.objects.get()
        assert weight.measured_at == at("2026-06-01T13:00")  # 09:00 in New York (EDT)
        assert (weight.recorded_by, weight.note) == (clinician.user, "Clinic scales")
        patient.refresh_from_db()
        assert patient.weight_kg == Decimal("81.3")
        assert weight.history.get().history_user == clinician.user  # who recorded it, in the audit trail

    def test_blank_time_means_now(self, north, patient):
        before = timezone.now()
        response = north.post(add_url(), {"patient": patient.pk, "weight_kg": "70.0"})
        assert response.status_code == 302
        assert before <= WeightMeasurement.objects.get().measured_at <= timezone.now()

    def test_an_implausible_weight_is_shown_beside_the_field(self, north, patient):
        response = north.post(add_url(), {"patient": patient.pk, "weight_kg": "724.0"})
        assert response.status_code == 200
        assert response.context["form"].errors["weight_kg"] == [RANGE_MESSAGE]
        assert not WeightMeasurement.objects.exists()

    def test_another_clinics_patient_cannot_be_chosen(self, north, other_patient):
        form = north.get(add_url(other_patient)).context["form"]
        assert other_patient not in form.fields["patient"].queryset
        response = north.post(add_url(), {"patient": other_patient.pk, "weight_kg": "70.0"})
        assert response.status_code == 200
        assert "patient" in response.context["form"].errors
        assert not WeightMeasurement.objects.exists()

    def test_another_clinics_weights_are_invisible(self, north, patient, other_patient):
        own = weigh(patient, "2026-06-01T09:00", "72.4")
        other = weigh(other_patient, "2026-06-01T09:00", "90.0")
        rows = list(north.get(admin_url("changelist", "weightmeasurement")).context["cl"].result_list)
        assert rows == [own]
        history_id = other.history.latest().history_id
        for url in (
            admin_url("change", "weightmeasurement", other.pk),
            admin_url("history", "weightmeasurement", other.pk),
            admin_url("delete", "weightmeasurement", other.pk),
            admin_url("simple_history", "weightmeasurement", other.pk, history_id),
        ):
            assert north.get(url).status_code == 404, url
        assert north.get(admin_url("history", "weightmeasurement", own.pk)).status_code == 200

    def test_a_weight_is_read_only_and_never_deleted(self, north, patient):
        weight = weigh(patient, "2026-06-01T09:00", "72.4")
        response = north.get(admin_url("change", "weightmeasurement", weight.pk))
        assert response.status_code == 200
        assert "weight_kg" not in response.context["adminform"].form.fields
        assert response.context["has_delete_permission"] is False
        actions = north.get(admin_url("changelist", "weightmeasurement")).context["action_form"].fields["action"]
        names = [name for name, _ in actions.choices]
        assert "mark_entered_in_error" in names and "delete_selected" not in names

    def test_marking_in_error_from_the_list_hands_back_the_current_weight(self, north, clinician, patient):
        weigh(patient, "2026-06-01T09:00", "72.4")
        wrong = weigh(patient, "2026-06-08T09:00", "74.0")
        response = north.post(
            admin_url("changelist", "weightmeasurement"),
            {"action": "mark_entered_in_error", "_selected_action": [wrong.pk], "confirm": "1", "reason": "Misread"},
        )
        assert response.status_code == 302
        wrong.refresh_from_db()
        assert wrong.is_entered_in_error and wrong.entered_in_error_by == clinician.user
        patient.refresh_from_db()
        assert patient.weight_kg == Decimal("72.4")

    def test_a_clinic_manager_sees_weights_but_cannot_add_them(self, client, clinic, patient):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        assert client.get(admin_url("changelist", "weightmeasurement")).status_code == 200
        assert client.get(add_url(patient)).status_code == 403
        assert add_url(patient) not in client.get(admin_url("change", "patient", patient.pk)).content.decode()

    def test_patient_weight_is_read_only_on_an_existing_patient(self, client, clinic, patient):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        form = client.get(admin_url("change", "patient", patient.pk)).context["adminform"].form
        assert "weight_kg" not in form.fields

    def test_a_new_patients_weight_is_their_first_measurement(self, client, clinic):
        from tests.test_admin_patients import new_patient_data

        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        response = client.post(admin_url("add", "patient"), new_patient_data(weight_kg="66.0"))
        assert response.status_code == 302
        created = Patient.objects.get(record_number="N-0100")
        assert created.weight_kg == Decimal("66.0")
        (weight,) = created.weights.all()
        assert (weight.weight_kg, weight.recorded_by) == (Decimal("66.0"), manager.user)

    def test_a_new_patients_implausible_weight_is_a_form_error(self, client, clinic):
        from tests.test_admin_patients import new_patient_data

        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        response = client.post(admin_url("add", "patient"), new_patient_data(weight_kg="660.0"))
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["weight_kg"] == [RANGE_MESSAGE]
        assert not Patient.objects.filter(record_number="N-0100").exists()
