"""The permission matrix: every endpoint and method against every kind of caller.

Rows are (method, URL, body) with the expected status for: anonymous, patient A (whose
records these are), patient B (same clinic), a clinician of the clinic and one of another
clinic. Each caller's request runs in a savepoint that is rolled back, so every caller
meets the same world. Outside a caller's reach, records answer 404 (never 403), and a body
that names them is refused like a missing id (400).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from tests.test_api_world import PERSONAS, World, client_for, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

Row = tuple[str, Callable[[World], str], Callable[[World], Any] | None, tuple[int, int, int, int, int]]
#            method, url,                  body,                          anon, A, B, clinician, other clinician

LIST = (401, 200, 200, 200, 200)
OWN_RECORD = (401, 200, 404, 200, 404)
PATIENT_CREATES = (401, 201, 400, 201, 400)
CLINICIAN_ACTION = (401, 403, 403, 200, 404)
READ_ONLY_WRITE = (401, 405, 405, 405, 405)  # a role may read here, but nobody may write
REPORT_WRITE = (401, 403, 403, 405, 405)  # patients may only POST new reports
FLAG_WRITE = (401, 403, 403, 405, 405)


def now_text() -> str:
    return (timezone.now() - dt.timedelta(minutes=5)).isoformat()


def detail(prefix: str, attr: str, suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/api/{prefix}/{getattr(w, attr).pk}/{suffix}"


def measurement_url(suffix: str = "") -> Callable[[World], str]:
    """A pulse of patient A's, recorded once per world (the world has no clinical measurement)."""

    def url(w: World) -> str:
        from tracker.services.measurements import record_measurement

        if not hasattr(w, "pulse"):
            w.pulse = record_measurement(patient=w.patient_a, kind="pulse", value=72, recorded_by=None)
        return f"/api/measurements/{w.pulse.pk}/{suffix}"

    return url


RECORDS = (
    ("patients", "patient_a"),
    ("prescriptions", "rx"),
    ("schedules", "schedule"),
    ("planned-doses", "planned"),
    ("dose-events", "event"),
    ("assessments", "assessment"),
    ("side-effects", "side_effect"),
    ("in-clinic-sessions", "session"),
    ("weight-measurements", "weight"),
)
REPORTS = {"dose-events", "assessments", "side-effects"}

ROWS: list[Row] = [
    *(("GET", (lambda w, p=p: f"/api/{p}/"), None, LIST) for p, _ in RECORDS),
    ("GET", lambda w: "/api/drugs/", None, LIST),
    ("GET", lambda w: "/api/drugs/1/", None, LIST),
    ("GET", lambda w: "/api/flags/", None, (401, 403, 403, 200, 200)),
    *(("GET", detail(p, a), None, OWN_RECORD) for p, a in RECORDS),
    ("GET", detail("patients", "patient_a", "fhir/"), None, CLINICIAN_ACTION),
    ("GET", detail("flags", "flag"), None, (401, 403, 403, 200, 404)),
    # Writes that replace or delete: never (405), whoever asks.
    *(
        (method, detail(p, a), lambda w: {}, REPORT_WRITE if p in REPORTS else READ_ONLY_WRITE)
        for p, a in RECORDS
        for method in ("PUT", "PATCH", "DELETE")
        if (p, method) != ("in-clinic-sessions", "PATCH")  # recorded step by step: the rows below
    ),
    *((method, detail("flags", "flag"), lambda w: {}, FLAG_WRITE) for method in ("PUT", "PATCH", "DELETE")),
    ("DELETE", lambda w: "/api/drugs/1/", None, READ_ONLY_WRITE),
    ("POST", lambda w: "/api/patients/", lambda w: {}, READ_ONLY_WRITE),
    ("POST", lambda w: "/api/schedules/", lambda w: {}, READ_ONLY_WRITE),
    ("POST", lambda w: "/api/planned-doses/", lambda w: {}, READ_ONLY_WRITE),
    # Prescribing is for prescribers (the clinic's clinician is one).
    (
        "POST",
        lambda w: "/api/prescriptions/",
        lambda w: {
            "patient": w.patient_a.pk,
            "drug": w.rx.drug_id,
            "dose": "25",
            "start_date": timezone.localdate().isoformat(),
            "schedules": [{"times_of_day": ["09:00"]}],
        },
        (401, 403, 403, 201, 400),
    ),
    (
        "POST",
        detail("prescriptions", "rx", "change-dose/"),
        lambda w: {"new_dose": "100", "effective_date": timezone.localdate().isoformat(), "reason": "Titration"},
        (401, 403, 403, 201, 404),
    ),
    (
        "POST",
        detail("prescriptions", "rx", "stop/"),
        lambda w: {"end_date": timezone.localdate().isoformat(), "reason": "Remission"},
        CLINICIAN_ACTION,
    ),
    *(
        ("POST", detail(p, a, "entered-in-error/"), lambda w: {"reason": "Wrong patient"}, CLINICIAN_ACTION)
        for p, a in RECORDS
        if p in REPORTS | {"prescriptions", "in-clinic-sessions", "weight-measurements"}
    ),
    # In-clinic sessions are recorded by the clinic's staff, by the admin's services. The other
    # clinic's clinician names a prescription out of reach (400) or a session out of reach (404).
    (
        "POST",
        lambda w: "/api/in-clinic-sessions/",
        lambda w: {"prescription": w.esketamine.pk, "bp_before_systolic": 126, "bp_before_diastolic": 80},
        (401, 403, 403, 201, 400),
    ),
    (
        "PATCH",
        detail("in-clinic-sessions", "session"),
        lambda w: {"adverse_events": "Mild nausea, settled"},
        CLINICIAN_ACTION,
    ),
    # The world's session has no SpO2 recorded: the clinic's clinician reaches the sign-off and is told so.
    ("POST", detail("in-clinic-sessions", "session", "sign-off/"), None, (401, 403, 403, 400, 404)),
    # What patients may add for themselves.
    (
        "POST",
        lambda w: "/api/dose-events/",
        lambda w: {"prescription": w.rx.pk, "occurred_at": now_text()},
        PATIENT_CREATES,
    ),
    (
        "POST",
        lambda w: "/api/dose-events/outside-clinic-report/",
        lambda w: {"prescription": w.esketamine.pk, "occurred_at": now_text(), "note": "At home"},
        PATIENT_CREATES,
    ),
    (
        "POST",
        lambda w: "/api/assessments/",
        lambda w: {"patient": w.patient_a.pk, "instrument": "gad7", "answers": [1] * 7},
        PATIENT_CREATES,
    ),
    (
        "POST",
        lambda w: "/api/side-effects/",
        lambda w: {"patient": w.patient_a.pk, "effect": "headache", "severity": "moderate"},
        PATIENT_CREATES,
    ),
    # Weights are recorded by clinicians; patients read their own.
    (
        "POST",
        lambda w: "/api/weight-measurements/",
        lambda w: {"patient": w.patient_a.pk, "weight_kg": "73.1"},
        (401, 403, 403, 201, 400),
    ),
    # Clinical measurements (height, BP, pulse, blood tests): as weights.
    ("GET", lambda w: "/api/measurements/", None, LIST),
    ("GET", measurement_url(), None, OWN_RECORD),
    *((method, measurement_url(), lambda w: {}, READ_ONLY_WRITE) for method in ("PUT", "PATCH", "DELETE")),
    ("POST", measurement_url("entered-in-error/"), lambda w: {"reason": "Wrong patient"}, CLINICIAN_ACTION),
    (
        "POST",
        lambda w: "/api/measurements/",
        lambda w: {"patient": w.patient_a.pk, "kind": "hdl", "value": "52"},
        (401, 403, 403, 201, 400),
    ),
    # Flags are the clinicians' worklist.
    ("POST", detail("flags", "flag", "acknowledge/"), None, CLINICIAN_ACTION),
    ("POST", detail("flags", "flag", "resolve/"), lambda w: {"note": "Called; safe, plan agreed"}, CLINICIAN_ACTION),
]


@pytest.mark.parametrize(
    "row",
    ROWS,
    ids=[f"{i:02d}-{r[0]}" for i, r in enumerate(ROWS)],
)
def test_permission_matrix(world: World, row: Row) -> None:
    method, url_of, body_of, expected = row
    url = url_of(world)
    actual = {}
    for persona in PERSONAS:
        with transaction.atomic():
            client = client_for(world, persona)
            body = body_of(world) if body_of else None
            response = getattr(client, method.lower())(url, body, format="json")
            actual[persona] = response.status_code
            transaction.set_rollback(True)
    assert actual == dict(zip(PERSONAS, expected, strict=True)), f"{method} {url}"


def test_patient_lists_hold_only_their_own_rows(world: World) -> None:
    # Patient A has one of each record in the world; patient B has none. Each list holds
    # exactly the caller's own rows: A's own record is there (an empty list would pass a
    # "nothing foreign" check alone), and B sees none of A's.
    for persona, patient in (("patient_a", world.patient_a), ("patient_b", world.patient_b)):
        client = client_for(world, persona)
        assert [p["id"] for p in client.get("/api/patients/").json()["results"]] == [patient.pk]
        for prefix, attr in RECORDS:
            if prefix in ("patients", "schedules"):  # the patient list above; schedules carry no patient
                continue
            record = getattr(world, attr)
            rows = client.get(f"/api/{prefix}/?page_size=100").json()["results"]
            assert {r["patient"] for r in rows} <= {patient.pk}, prefix
            ids = {r["id"] for r in rows}
            expected = set(type(record).objects.filter(patient=patient).values_list("pk", flat=True))
            assert ids == expected, prefix
            assert (record.pk in ids) is (patient == world.patient_a), prefix
    # And the other clinic's clinician sees none of this clinic's patients.
    ids = [p["id"] for p in client_for(world, "other_clinician").get("/api/patients/").json()["results"]]
    assert world.patient_a.pk not in ids and world.patient_b.pk not in ids and len(ids) == 1


def test_a_user_without_a_role_reaches_nothing(world: World, django_user_model) -> None:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    stranger = django_user_model.objects.create_user("stranger", password="not-a-clinician-2026")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=stranger).key}")
    assert client.get("/api/patients/").status_code == 403
    assert client.get(f"/api/patients/{world.patient_a.pk}/").status_code == 403


def test_session_auth_works_for_the_portal(world: World, client) -> None:
    client.force_login(world.users["patient_a"])
    response = client.get("/api/patients/")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [world.patient_a.pk]


@pytest.mark.django_db
class TestRolePermissions:
    """Beyond clinic scoping, a clinician's writes follow their role's permissions, as in the admin."""

    @staticmethod
    def client_as(role: str, world: World) -> APIClient:
        from tests import factories

        member = factories.ClinicianFactory(clinic=world.patient_a.clinic, role=role)
        client = APIClient()
        client.force_authenticate(member.user)
        return client

    def test_a_clinic_manager_cannot_resolve_a_flag(self, world: World) -> None:
        response = self.client_as("manager", world).post(
            f"/api/flags/{world.flag.pk}/resolve/", {"note": "done"}, format="json"
        )
        assert response.status_code == 403
        assert response.json()["detail"] == "Your role does not allow this change."

    def test_a_nurse_cannot_mark_a_prescription_in_error_but_can_acknowledge_a_flag(self, world: World) -> None:
        nurse = self.client_as("nurse", world)
        response = nurse.post(f"/api/prescriptions/{world.rx.pk}/entered-in-error/", {"reason": "x"}, format="json")
        assert response.status_code == 403
        assert nurse.post(f"/api/flags/{world.flag.pk}/acknowledge/").status_code == 200
