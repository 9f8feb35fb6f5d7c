"""Patient.gender and the portal language (issue 19): a clinician sets them on the admin's patient
page, the API's patient shape returns them, and a form posted without them keeps the default."""

from __future__ import annotations

import pytest

from tests import factories
from tests.test_admin_patients import change_patient_data, new_patient_data
from tests.test_admin_scoping import admin_url
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.models import Patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(clinic):
    """Clinic managers register and edit patients (tracker/services/clinicians.py)."""
    return factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")


def test_clinician_sets_gender_and_language_on_the_patient_page(client, manager, clinician, patient) -> None:
    client.force_login(manager.user)
    page = client.get(admin_url("change", "patient", patient.pk))
    form = page.context["adminform"].form
    assert {"gender", "language"} <= set(form.fields)
    html = page.content.decode()
    assert 'name="gender"' in html and 'name="language"' in html and ">Unknown</option>" in html

    data = change_patient_data(client, patient, clinician, gender="female", language="es")
    response = client.post(admin_url("change", "patient", patient.pk), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    patient.refresh_from_db()
    assert (patient.gender, patient.language) == ("female", "es")
    assert patient.history.latest().gender == "female"  # kept in the record's history


def test_an_invalid_gender_is_refused_on_its_field(client, manager) -> None:
    client.force_login(manager.user)
    response = client.post(admin_url("add", "patient"), new_patient_data(gender="robot"))
    assert response.status_code == 200
    assert "gender" in response.context["adminform"].form.errors
    assert not Patient.objects.filter(record_number="N-0100").exists()


def test_a_new_patient_posted_without_them_gets_the_defaults(client, manager) -> None:
    client.force_login(manager.user)
    assert client.post(admin_url("add", "patient"), new_patient_data()).status_code == 302
    created = Patient.objects.get(record_number="N-0100")
    assert (created.gender, created.language) == ("unknown", "en")


def test_the_api_patient_shape_has_gender_and_language(world: World) -> None:
    world.patient_a.gender = "male"
    world.patient_a.save(update_fields=["gender", "updated_at"])
    body = client_for(world, "clinician").get(f"/api/patients/{world.patient_a.pk}/").json()
    assert (body["gender"], body["language"]) == ("male", "en")
