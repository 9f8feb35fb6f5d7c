"""The access log: each read of a patient's record writes one row, managers read it, nobody changes it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests import factories
from tracker.models import Clinician, PatientAccess
from tracker.models.access import AccessLogChangeError

pytestmark = pytest.mark.django_db
Surface = PatientAccess.Surface


@pytest.fixture
def manager(clinic):
    return factories.ClinicianFactory(clinic=clinic, role=Clinician.Role.MANAGER, user__username="mgr-north")


@pytest.fixture
def nurse(clinic):
    return factories.ClinicianFactory(clinic=clinic, role=Clinician.Role.NURSE, user__username="nurse-north")


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def only_row(patient) -> PatientAccess:
    rows = list(PatientAccess.objects.filter(patient=patient))
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize(
    ("path", "surface"),
    [
        ("/admin/tracker/patient/{pk}/change/", Surface.PATIENT_PAGE),
        ("/admin/tracker/patient/{pk}/timeline/", Surface.TIMELINE),
        ("/admin/tracker/patient/{pk}/export.csv", Surface.COURSE_CSV),
    ],
)
def test_each_workspace_read_writes_one_row_naming_who_where_and_the_address(client, clinician, patient, path, surface):
    client.force_login(clinician.user)
    response = client.get(path.format(pk=patient.pk), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    row = only_row(patient)
    assert (row.user_id, row.surface, row.clinic_id, row.address) == (
        clinician.user_id, surface, patient.clinic_id, "10.1.2.3"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "surface"), [("/api/patients/{pk}/", Surface.API_DETAIL), ("/api/patients/{pk}/fhir/", Surface.FHIR)]
)
def test_each_api_read_writes_one_row(clinician, patient, path, surface):
    assert api(clinician.user).get(path.format(pk=patient.pk)).status_code == 200
    row = only_row(patient)
    assert (row.user_id, row.surface) == (clinician.user_id, surface)


def test_recording_a_read_is_one_insert(rf, clinician, patient):
    from tracker.services.access import record_access

    request = rf.get("/")
    request.user = clinician.user
    with CaptureQueriesContext(connection) as queries:
        record_access(request, patient, Surface.TIMELINE)
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]


def test_the_api_patient_list_logs_each_patient_on_the_page_in_one_insert(clinician, patient, other_patient):
    second = factories.PatientFactory(clinic=patient.clinic, record_number="N-0002")
    third = factories.PatientFactory(clinic=patient.clinic, record_number="N-0003")
    client = api(clinician.user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/patients/?page_size=2&ordering=record_number", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [patient.pk, second.pk]
    rows = PatientAccess.objects.order_by("patient_id")
    assert [(r.patient_id, r.user_id, r.clinic_id, r.surface, r.address) for r in rows] == [
        (p.pk, clinician.user_id, p.clinic_id, Surface.API_LIST, "10.1.2.3") for p in (patient, second)
    ]
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1 and "tracker_patientaccess" in inserts[0]
    # The next page logs the patient it shows; a filter that matches nobody logs nobody.
    assert client.get("/api/patients/?page_size=2&ordering=record_number&page=2").status_code == 200
    assert client.get("/api/patients/?record_number=nobody").json()["results"] == []
    assert sorted(PatientAccess.objects.values_list("patient_id", flat=True)) == [patient.pk, second.pk, third.pk]
    assert not PatientAccess.objects.filter(patient=other_patient).exists()  # another clinic's: never listed


def test_lists_and_refused_reads_write_nothing(client, clinician, patient, other_patient):
    client.force_login(clinician.user)
    assert client.get("/admin/tracker/patient/").status_code == 200
    assert client.get(f"/admin/tracker/patient/{other_patient.pk}/change/").status_code == 404
    assert api(clinician.user).get(f"/api/patients/{other_patient.pk}/").status_code == 404
    assert not PatientAccess.objects.exists()


def test_saving_the_patient_page_is_not_a_read(client, manager, patient):
    client.force_login(manager.user)
    client.post(f"/admin/tracker/patient/{patient.pk}/change/", {})  # a save, valid or not
    assert not PatientAccess.objects.exists()


def test_a_manager_sees_who_opened_the_record_on_the_patient_page(client, clinician, manager, patient):
    client.force_login(clinician.user)
    client.get(f"/admin/tracker/patient/{patient.pk}/timeline/")
    client.force_login(manager.user)
    page = client.get(f"/admin/tracker/patient/{patient.pk}/change/").content.decode()
    assert "Who opened this record (last 50)" in page
    assert clinician.user.username in page and "Course timeline" in page


def test_other_staff_do_not_see_the_access_log(client, nurse, clinician, patient):
    for member in (nurse, clinician):
        client.force_login(member.user)
        page = client.get(f"/admin/tracker/patient/{patient.pk}/change/").content.decode()
        assert "Who opened this record" not in page
        assert client.get("/admin/tracker/patientaccess/").status_code == 403


def test_the_clinic_list_is_clinic_scoped_filterable_by_clinician_and_exportable(
    client, clinician, nurse, manager, patient, other_clinician, other_patient
):
    second = factories.PatientFactory(clinic=patient.clinic, record_number="N-0002")
    client.force_login(clinician.user)
    client.get(f"/admin/tracker/patient/{patient.pk}/timeline/")
    client.force_login(nurse.user)
    client.get(f"/admin/tracker/patient/{second.pk}/change/")
    client.force_login(other_clinician.user)
    client.get(f"/admin/tracker/patient/{other_patient.pk}/timeline/")
    client.force_login(manager.user)
    page = client.get("/admin/tracker/patientaccess/").content.decode()
    assert patient.record_number in page and other_patient.record_number not in page
    assert other_clinician.user.username not in page  # not even in the 'opened by' filter
    # Which records one clinician opened: the 'opened by' filter.
    theirs = client.get(f"/admin/tracker/patientaccess/?user__id__exact={clinician.user_id}")
    assert [a.patient_id for a in theirs.context["cl"].result_list] == [patient.pk]
    theirs = client.get(f"/admin/tracker/patientaccess/?user__id__exact={nurse.user_id}")
    assert [a.patient_id for a in theirs.context["cl"].result_list] == [second.pk]
    rows = PatientAccess.objects.filter(clinic=patient.clinic)
    response = client.post(
        "/admin/tracker/patientaccess/",
        {"action": "export_csv", "_selected_action": [str(r.pk) for r in rows]},
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "opened_at_utc,username,record_number,patient_id,where,address"
    assert len(lines) == 1 + rows.count() and all(other_patient.record_number not in line for line in lines)


def test_rows_cannot_be_changed_or_deleted(client, clinician, manager, patient):
    client.force_login(clinician.user)
    client.get(f"/admin/tracker/patient/{patient.pk}/timeline/")
    row = only_row(patient)
    row.surface = Surface.FHIR
    with pytest.raises(AccessLogChangeError):
        row.save()
    with pytest.raises(AccessLogChangeError):
        row.delete()
    with pytest.raises(AccessLogChangeError):
        PatientAccess.objects.all().update(surface=Surface.FHIR)
    with pytest.raises(AccessLogChangeError):
        PatientAccess.objects.all().delete()
    client.force_login(manager.user)
    assert client.get(f"/admin/tracker/patientaccess/{row.pk}/change/").status_code == 200  # read-only view
    assert client.post(f"/admin/tracker/patientaccess/{row.pk}/change/", {"surface": "fhir"}).status_code == 403
    assert client.get(f"/admin/tracker/patientaccess/{row.pk}/delete/").status_code == 403
    assert client.get("/admin/tracker/patientaccess/add/").status_code == 403
    assert PatientAccess.objects.get().surface == Surface.TIMELINE
