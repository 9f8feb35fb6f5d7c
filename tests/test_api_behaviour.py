"""The API's behaviour: writes go through the services, errors name the field, nothing is deleted,
and list endpoints cost the same number of queries whatever the page size."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests import factories
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.models import (
    Assessment,
    DoseEvent,
    DoseSchedule,
    Flag,
    FlagKind,
    InClinicSession,
    Patient,
    PlannedDose,
    Prescription,
    SideEffectReport,
)
from tracker.services.assessments import submit_assessment

pytestmark = pytest.mark.django_db


def today() -> str:
    return timezone.localdate().isoformat()


# --- validation errors: DRF's shape, naming the field and the reason --------------------------


@pytest.mark.parametrize(
    ("url", "body", "field", "words"),
    [
        ("/api/prescriptions/", {"dose": "5000"}, "dose", "above the maximum"),
        ("/api/prescriptions/", {"schedules": [{"times_of_day": ["8am"]}]}, "times_of_day", "HH:MM"),
        ("/api/prescriptions/", {"dose": "abc"}, "dose", "valid number"),
        ("/api/prescriptions/", {"patient": 999999}, "patient", "does not exist"),
        ("/api/assessments/", {"answers": [1, 2]}, "answers", "Please answer question 3 of 9"),
        ("/api/assessments/", {"answers": [9] * 9}, "answers", "out of range"),
        ("/api/side-effects/", {"effect": "other"}, "description", "describe"),
        ("/api/dose-events/", {"occurred_at": "2026-06-01T08:00:00"}, "occurred_at", "offset"),
        ("/api/dose-events/", {"occurred_at": "2100-01-01T08:00:00+00:00"}, "occurred_at", "future"),
        ("/api/dose-events/", {"outcome": "skipped"}, "skip_reason", "why"),
    ],
)
def test_validation_errors_name_the_field(world: World, url, body, field, words) -> None:
    defaults = {
        "/api/prescriptions/": {
            "patient": world.patient_a.pk,
            "drug": world.rx.drug_id,
            "dose": "50",
            "start_date": today(),
            "schedules": [{"times_of_day": ["08:00"]}],
        },
        "/api/assessments/": {"patient": world.patient_a.pk, "instrument": "phq9", "answers": [0] * 9},
        "/api/side-effects/": {"patient": world.patient_a.pk, "effect": "nausea", "severity": "mild"},
        "/api/dose-events/": {"prescription": world.rx.pk, "occurred_at": timezone.now().isoformat()},
    }[url]
    response = client_for(world, "clinician").post(url, {**defaults, **body}, format="json")
    assert response.status_code == 400
    errors = response.json()
    if field == "times_of_day":  # a schedule's field is reported where it was sent, or by the model
        flat = str(errors)
        assert "times_of_day" in flat and words in flat
        return
    assert field in errors, errors
    assert isinstance(errors[field], list) and words in errors[field][0], errors


def test_change_dose_errors_use_the_request_names(world: World) -> None:
    client = client_for(world, "clinician")
    url = f"/api/prescriptions/{world.rx.pk}/change-dose/"
    too_early = (world.rx.start_date - dt.timedelta(days=1)).isoformat()
    response = client.post(url, {"new_dose": "100", "effective_date": too_early, "reason": "x"}, format="json")
    assert response.status_code == 400
    assert "effective_date" in response.json()
    response = client.post(url, {"new_dose": "100", "effective_date": today(), "reason": " "}, format="json")
    assert response.status_code == 400 and "reason" in response.json()


def test_a_refusal_about_no_field_is_a_non_field_error(world: World) -> None:
    clinician = client_for(world, "clinician")
    marked = clinician.post(f"/api/prescriptions/{world.rx.pk}/entered-in-error/", {"reason": "Wrong patient"}, "json")
    assert marked.status_code == 200
    response = client_for(world, "patient_a").post(
        "/api/dose-events/", {"prescription": world.rx.pk, "occurred_at": timezone.now().isoformat()}, "json"
    )
    assert response.status_code == 400
    assert "entered in error" in response.json()["non_field_errors"][0]


def test_a_patients_clinic_only_dose_is_an_error_on_prescription(world: World) -> None:
    response = client_for(world, "patient_a").post(
        "/api/dose-events/", {"prescription": world.esketamine.pk, "occurred_at": timezone.now().isoformat()}, "json"
    )
    assert response.status_code == 400
    assert "given only at the clinic" in response.json()["prescription"][0]


def test_patients_may_not_submit_clinician_rated_scales(world: World) -> None:
    response = client_for(world, "patient_a").post(
        "/api/assessments/", {"patient": world.patient_a.pk, "instrument": "madrs", "answers": [0] * 10}, "json"
    )
    assert response.status_code == 400
    assert "rated by a clinician" in response.json()["instrument"][0]


def test_a_patients_answers_are_patient_reported_whatever_they_send(world: World) -> None:
    response = client_for(world, "patient_a").post(
        "/api/assessments/",
        {"patient": world.patient_a.pk, "instrument": "gad7", "answers": [2] * 7, "source": "clinician"},
        "json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["source"], body["total"], body["band"]) == ("patient", 14, "moderate")


# --- writes go through the services ----------------------------------------------------------


def test_change_dose_makes_a_new_version_linked_both_ways(world: World) -> None:
    client = client_for(world, "clinician")
    response = client.post(
        f"/api/prescriptions/{world.rx.pk}/change-dose/",
        {"new_dose": "100", "effective_date": today(), "reason": "Titration to target"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    new = response.json()
    assert (new["replaces"], new["dose"], new["status"]) == (world.rx.pk, "100.00", "active")
    assert len(new["schedules"]) == 1 and new["schedules"][0]["times_of_day"] == ["08:00", "20:00"]
    old = client.get(f"/api/prescriptions/{world.rx.pk}/").json()
    assert (old["replaced_by"], old["status"]) == (new["id"], "superseded")


def test_recording_a_dose_matches_the_plan(world: World) -> None:
    due = world.open_planned.due_at
    response = client_for(world, "patient_a").post(
        "/api/dose-events/", {"prescription": world.rx.pk, "occurred_at": due.isoformat()}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["planned_dose"], body["timing"], body["reporter"]) == (world.open_planned.pk, "on_time", "patient")
    world.open_planned.refresh_from_db()
    assert world.open_planned.status == PlannedDose.Status.TAKEN


def test_outside_clinic_report_raises_its_critical_flag(world: World) -> None:
    response = client_for(world, "patient_a").post(
        "/api/dose-events/outside-clinic-report/",
        {"prescription": world.esketamine.pk, "occurred_at": timezone.now().isoformat(), "note": "A friend's"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["outside_clinic_report"] is True
    assert Flag.objects.filter(kind=FlagKind.ESK_OUTSIDE_CLINIC, patient=world.patient_a).count() == 1


def test_flag_acknowledge_then_resolve_needs_a_note_for_urgent(world: World) -> None:
    client = client_for(world, "clinician")
    base = f"/api/flags/{world.flag.pk}"
    assert client.post(f"{base}/acknowledge/").json()["status"] == "acknowledged"
    again = client.post(f"{base}/acknowledge/")
    assert again.status_code == 400 and "Only an open flag" in again.json()["non_field_errors"][0]
    missing = client.post(f"{base}/resolve/", {}, format="json")
    assert missing.status_code == 400 and "note" in missing.json()
    done = client.post(f"{base}/resolve/", {"note": "Spoke to the patient; safe"}, format="json").json()
    assert (done["status"], done["resolution_note"]) == ("resolved", "Spoke to the patient; safe")


def test_entered_in_error_needs_a_reason_and_keeps_the_record(world: World) -> None:
    client = client_for(world, "clinician")
    url = f"/api/dose-events/{world.event.pk}/entered-in-error/"
    assert client.post(url, {}, format="json").json() == {"reason": ["This field is required."]}
    blank = client.post(url, {"reason": ""}, format="json")
    assert blank.status_code == 400 and "reason" in blank.json()
    marked = client.post(url, {"reason": "Logged for the wrong day"}, format="json")
    assert marked.status_code == 200
    assert marked.json()["entered_in_error_reason"] == "Logged for the wrong day"
    assert DoseEvent.objects.filter(pk=world.event.pk, entered_in_error_at__isnull=False).exists()
    current = client.get("/api/dose-events/?entered_in_error=false").json()["results"]
    assert world.event.pk not in [e["id"] for e in current]


# --- nothing is deleted ---------------------------------------------------------------------


def test_no_delete_anywhere(world: World) -> None:
    client = client_for(world, "clinician")
    records = {
        "patients": world.patient_a,
        "prescriptions": world.rx,
        "schedules": world.schedule,
        "planned-doses": world.planned,
        "dose-events": world.event,
        "assessments": world.assessment,
        "side-effects": world.side_effect,
        "flags": world.flag,
        "in-clinic-sessions": world.session,
    }
    for prefix, record in records.items():
        assert client.delete(f"/api/{prefix}/{record.pk}/").status_code == 405, prefix
        assert client.delete(f"/api/{prefix}/").status_code == 405, prefix
        assert type(record).objects.filter(pk=record.pk).exists()


# --- pagination, filtering, ordering ---------------------------------------------------------


def test_page_size_is_capped_and_filters_and_ordering_apply(world: World) -> None:
    client = client_for(world, "clinician")
    body = client.get("/api/planned-doses/?page_size=1000").json()
    assert len(body["results"]) == min(body["count"], 100)
    rows = client.get(f"/api/planned-doses/?prescription={world.rx.pk}&status=taken").json()["results"]
    assert [r["id"] for r in rows] == [world.planned.pk]
    due = [r["due_at"] for r in client.get("/api/planned-doses/?ordering=-due_at&page_size=10").json()["results"]]
    assert due == sorted(due, reverse=True)
    assert client.get("/api/flags/?status=nonsense").status_code == 400
    assert client.get("/api/patients/?page=999").status_code == 404


# --- query counts do not grow with the page size ----------------------------------------------


def many_rows(world: World, clinician) -> None:
    """30+ rows behind every list endpoint for patient A's clinic."""
    for n in range(30):
        factories.PatientFactory(clinic=world.patient_a.clinic, responsible_clinician=clinician, record_number=f"Q{n}")
    for _ in range(30):
        submit_assessment(patient=world.patient_a, instrument="phq9", answers=[0] * 8 + [1], source="patient")
    for _ in range(30):
        factories.DoseScheduleFactory(prescription__patient=world.patient_a, prescription__prescriber=clinician)
    assert Assessment.objects.count() > 30 and Flag.objects.count() > 30 and Prescription.objects.count() > 30


LIST_QUERIES = {
    # token + user, clinician membership, COUNT, the page; prescriptions add one prefetch (schedules).
    "patients": 5,  # + the access log's rows for the page's patients, one INSERT
    "drugs": 4,
    "prescriptions": 5,
    "schedules": 4,
    "planned-doses": 4,
    "dose-events": 4,
    "assessments": 4,
    "side-effects": 4,
    "flags": 5,  # + the facts behind the page's flags, one IN query
    "in-clinic-sessions": 5,  # + the addenda of the page's sessions, one IN query
}


@pytest.mark.parametrize("prefix", LIST_QUERIES)
def test_list_query_count_does_not_grow_with_page_size(
    world: World,
    clinician,
    prefix: str,
    django_assert_num_queries,
) -> None:
    many_rows(world, clinician)
    client = client_for(world, "clinician")
    Token.objects.get(user=world.users["clinician"])  # created now, not inside the counted request
    for size in (5, 25):
        # 1 token with its user (select_related), 2 the clinician membership, 3 COUNT(*), 4 the page,
        # (5 for prescriptions: their schedules, one IN query; for flags: their facts; for sessions: addenda).
        with django_assert_num_queries(LIST_QUERIES[prefix]):
            response = client.get(f"/api/{prefix}/?page_size={size}")
        assert response.status_code == 200
        if prefix not in ("drugs", "side-effects", "dose-events", "in-clinic-sessions"):
            assert len(response.json()["results"]) == size, prefix


def test_fhir_export_query_count_does_not_grow_with_the_course(world: World) -> None:
    client = client_for(world, "clinician")
    url = f"/api/patients/{world.patient_a.pk}/fhir/"
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for _ in range(10):
        submit_assessment(patient=world.patient_a, instrument="gad7", answers=[1] * 7, source="patient")
    with CaptureQueriesContext(connection) as large:
        client.get(url)
    assert len(small) == len(large)


# --- tokens for integrations -----------------------------------------------------------------


def test_drf_create_token_issues_a_token_that_works(world: World) -> None:
    out = StringIO()
    call_command("drf_create_token", world.users["clinician"].username, stdout=out)
    key = Token.objects.get(user=world.users["clinician"]).key
    assert key in out.getvalue()
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/flags/").status_code == 200


def test_models_are_all_covered() -> None:
    """A guard: every clinical model above has an endpoint (so the matrix and DELETE test see it)."""
    from tracker.api.urls import router

    models = {
        viewset.read_serializer.Meta.model for _, viewset, _ in router.registry if hasattr(viewset, "read_serializer")
    }
    assert {
        Patient,
        Prescription,
        DoseSchedule,
        PlannedDose,
        DoseEvent,
        Assessment,
        SideEffectReport,
        Flag,
        InClinicSession,
    } <= models
