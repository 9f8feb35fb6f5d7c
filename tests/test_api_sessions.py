"""Session writes through the API, as a monitor or an EHR would send them with a nurse's token.

The same services as the admin's session form run behind each request, so the same checks
apply: a pre-dose BP above 140/90 warns and refuses dosing until a decision is recorded, a
session is signed off only when complete, and a signed-off session changes only by an
addendum. Time is frozen on 1 June 2026 (London on BST, UTC+1); the planned session is at
10:00 London (09:00 UTC).
"""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.test_ketamine_sessions import esketamine_course, planned
from tracker.models import DoseEvent, InClinicSession, SessionAddendum
from tracker.services.sessions import TAKEN_PLANNED_SESSION

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)  # 13:00 in London
URL = "/api/in-clinic-sessions/"


@pytest.fixture(autouse=True)
def frozen(monkeypatch) -> None:
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def nurse(clinic):
    return factories.ClinicianFactory(clinic=clinic, role="nurse", title="", user__username="nurse-north")


@pytest.fixture
def rx(patient, clinician):
    return esketamine_course(patient, clinician)


@pytest.fixture
def as_nurse(nurse) -> APIClient:
    return token_client(nurse.user)


def started(client: APIClient, rx) -> dict:
    response = client.post(URL, {"planned_dose": planned(rx).pk}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, f"{text} has no offset"
    return value


def test_a_nurse_records_a_whole_session_signs_it_off_and_changes_it_only_by_an_addendum(as_nurse, nurse, rx):
    # Started from the planned session: the prescription comes from it, the nurse administers.
    body = started(as_nurse, rx)
    assert (body["prescription"], body["planned_dose"], body["administered_by"]) == (rx.pk, planned(rx).pk, nurse.pk)
    assert (body["status"], body["care_setting"], body["warnings"]) == ("started", "outpatient", [])
    url = f"{URL}{body['id']}/"

    # A pre-dose BP above 140/90, typed on London's clock: saved, and the warning comes back at once.
    response = as_nurse.patch(
        url,
        {"bp_before_systolic": 152, "bp_before_diastolic": 94, "bp_before_at": "2026-06-01T09:50:00+01:00"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert instant(body["bp_before_at"]) == dt.datetime(2026, 6, 1, 8, 50, tzinfo=dt.UTC)
    (warning,) = body["warnings"]
    assert "152/94" in warning and "above the label threshold of 140/90" in warning
    assert as_nurse.get(url).json()["warnings"] == [warning]  # it stands until the decision

    # Dosing is refused until the withhold/proceed decision is recorded, on the decision's field.
    dosing = {"devices": 2, "first_device_at": "2026-06-01T10:00:00+01:00", "lot_number": "LOT-2291"}
    response = as_nurse.patch(url, dosing, format="json")
    assert response.status_code == 400
    assert "Record the decision (withhold or proceed)" in response.json()["bp_decision"][0]
    assert InClinicSession.objects.get(pk=body["id"]).first_device_at is None

    response = as_nurse.patch(
        url, {"bp_decision": "proceeded", "bp_decision_reason": "Repeat 138/88 after rest"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["bp_decision"], body["bp_decision_by"], body["warnings"]) == ("proceeded", nurse.pk, [])

    response = as_nurse.patch(url, dosing, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["warnings"] == []  # 2 devices = 56 mg, as prescribed
    assert instant(response.json()["first_device_at"]) == dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)

    monitoring = {
        "bp_40min_systolic": 136,
        "bp_40min_diastolic": 86,
        "bp_40min_at": "2026-06-01T10:40:00+01:00",
        "spo2_lowest": 97,
        "moaas_lowest": 4,
        "cadss_total": 12,
        "respiratory_depression": False,
    }
    response = as_nurse.patch(url, monitoring, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["warnings"] == []

    discharge = {
        "bp_discharge_systolic": 128,
        "bp_discharge_diastolic": 80,
        "moaas_at_discharge": 5,
        "dissociation_resolved": True,
        "no_driving_acknowledged": True,
        "discharge_at": "2026-06-01T12:15:00+01:00",
    }
    response = as_nurse.patch(url, discharge, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["warnings"]) == ("completed", [])
    event = DoseEvent.objects.get(pk=body["dose_event"])
    assert (event.planned_dose_id, event.location, event.reporter) == (planned(rx).pk, "clinic", "clinician")
    assert event.occurred_at == dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)

    response = as_nurse.post(f"{url}sign-off/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (instant(body["signed_off_at"]), body["signed_off_by"]) == (NOW, nurse.pk)

    # Signed off: a change without a reason is refused on addendum_reason, and nothing changes.
    change = {"adverse_events": "Mild nausea at 30 min, settled without treatment"}
    response = as_nurse.patch(url, change, format="json")
    assert response.status_code == 400
    assert "was signed off on 01 Jun 2026 13:00 BST" in response.json()["addendum_reason"][0]
    assert InClinicSession.objects.get(pk=body["id"]).adverse_events == ""
    assert not SessionAddendum.objects.exists()

    response = as_nurse.patch(url, {**change, "addendum_reason": "Nausea reported after discharge"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["adverse_events"] == change["adverse_events"]
    (addendum,) = body["addenda"]
    assert (addendum["reason"], addendum["changed_fields"]) == ("Nausea reported after discharge", ["adverse_events"])
    assert addendum["recorded_by"] == nurse.user.pk
    stored = SessionAddendum.objects.get()
    assert (stored.session_id, stored.recorded_by, stored.created_at) == (body["id"], nurse.user, NOW)


def test_resending_values_already_on_record_changes_nothing_and_needs_no_addendum(as_nurse, rx):
    body = started(as_nurse, rx)
    url = f"{URL}{body['id']}/"
    bp = {"bp_before_systolic": 124, "bp_before_diastolic": 78, "bp_before_at": "2026-06-01T08:50:00Z"}
    assert as_nurse.patch(url, bp, format="json").status_code == 200
    dose = {"devices": 2, "first_device_at": "2026-06-01T09:00:00Z"}
    assert as_nurse.patch(url, dose, format="json").status_code == 200
    # A client sending the whole record again: the unchanged pre-dose BP is not "changed after dosing".
    response = as_nurse.patch(url, {**bp, **dose, "spo2_lowest": 96}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["spo2_lowest"] == 96


def test_sign_off_is_refused_while_a_required_field_is_missing_and_says_which(as_nurse, rx):
    body = started(as_nurse, rx)
    response = as_nurse.post(f"{URL}{body['id']}/sign-off/")
    assert response.status_code == 400
    (message,) = response.json()["non_field_errors"]
    assert "cannot be signed off yet" in message and "BP before dosing" in message and "discharge" in message
    assert InClinicSession.objects.get(pk=body["id"]).signed_off_at is None


def test_a_time_without_an_offset_is_refused_saying_the_offset_is_needed(as_nurse, rx):
    body = started(as_nurse, rx)
    response = as_nurse.patch(
        f"{URL}{body['id']}/",
        {"bp_before_systolic": 124, "bp_before_diastolic": 78, "bp_before_at": "2026-06-01T09:50:00"},
        format="json",
    )
    assert response.status_code == 400
    assert "with its offset" in response.json()["bp_before_at"][0]
    assert InClinicSession.objects.get(pk=body["id"]).bp_before_systolic is None


def test_a_decision_reason_without_a_decision_is_refused_on_the_decision(as_nurse, rx):
    body = started(as_nurse, rx)
    response = as_nurse.patch(f"{URL}{body['id']}/", {"bp_decision_reason": "Felt fine"}, format="json")
    assert response.status_code == 400
    assert "withhold the dose or proceed" in response.json()["bp_decision"][0]


def test_service_refusals_come_back_on_their_field(as_nurse, rx):
    body = started(as_nurse, rx)
    url = f"{URL}{body['id']}/"
    response = as_nurse.patch(url, {"bp_before_systolic": 400, "bp_before_diastolic": 80}, format="json")
    assert response.status_code == 400
    assert any("not plausible" in m for m in response.json()["bp_before_systolic"])
    bp = {"bp_before_systolic": 124, "bp_before_diastolic": 78, "bp_before_at": "2026-06-01T08:50:00Z"}
    assert as_nurse.patch(url, bp, format="json").status_code == 200
    response = as_nurse.patch(url, {"devices": 5, "first_device_at": "2026-06-01T09:00:00Z"}, format="json")
    assert response.status_code == 400
    assert "above the maximum" in response.json()["devices"][0]
    response = as_nurse.patch(url, {"devices": 2, "first_device_at": "2026-06-01T08:40:00Z"}, format="json")
    assert response.status_code == 400
    assert "after the blood pressure before dosing" in response.json()["first_device_at"][0]
    # The same planned session cannot have two sessions.
    response = as_nurse.post(URL, {"planned_dose": planned(rx).pk}, format="json")
    assert response.status_code == 400
    assert response.json()["planned_dose"] == [TAKEN_PLANNED_SESSION]


def test_a_patient_token_may_read_their_session_but_not_write_it(patient, nurse, rx):
    body = started(token_client(nurse.user), rx)
    patient.user = factories.UserFactory(username="patient-north")
    patient.save(update_fields=["user"])
    as_patient = token_client(patient.user)
    url = f"{URL}{body['id']}/"
    assert as_patient.get(url).status_code == 200
    refusals = [
        as_patient.post(URL, {"prescription": rx.pk}, format="json"),
        as_patient.patch(url, {"bp_before_systolic": 120, "bp_before_diastolic": 80}, format="json"),
        as_patient.post(f"{url}sign-off/"),
    ]
    assert [r.status_code for r in refusals] == [403, 403, 403]
    assert refusals[0].json()["detail"] == "Only clinic staff may do this."
    assert InClinicSession.objects.count() == 1
    assert InClinicSession.objects.get().bp_before_systolic is None


def test_another_clinics_session_is_404_and_its_ids_are_refused_on_their_field(
    other_clinic, other_clinician, nurse, rx
):
    body = started(token_client(nurse.user), rx)
    url = f"{URL}{body['id']}/"
    elsewhere = token_client(factories.ClinicianFactory(clinic=other_clinic, role="nurse").user)
    assert elsewhere.get(url).status_code == 404
    assert elsewhere.patch(url, {"spo2_lowest": 90}, format="json").status_code == 404
    assert elsewhere.post(f"{url}sign-off/").status_code == 404
    # Naming this clinic's prescription or planned session is a 400 on that field, like a missing id.
    response = elsewhere.post(URL, {"prescription": rx.pk, "planned_dose": planned(rx, "2026-06-04").pk}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"prescription", "planned_dose"}
    assert "does not exist" in response.json()["prescription"][0]
    assert InClinicSession.objects.count() == 1


def test_the_administering_clinician_is_of_the_patients_clinic(as_nurse, other_clinician, rx):
    response = as_nurse.post(URL, {"prescription": rx.pk, "administered_by": other_clinician.pk}, format="json")
    assert response.status_code == 400
    assert "does not exist" in response.json()["administered_by"][0]
    response = as_nurse.post(URL, {}, format="json")
    assert response.status_code == 400
    assert response.json()["prescription"] == ["Give the prescription, or the planned session this session fulfils."]
    assert not InClinicSession.objects.exists()
