"""Hostile input is answered 4xx, never 5xx, and nothing a clinician writes is lost.

Each case was a 500 on PostgreSQL before (issue 14): a reason longer than simple-history's
100-character change-reason column, JSON nested thousands deep, ``1e999`` as an id, and a NUL
byte (which PostgreSQL refuses in text) in an admin filter or search.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.test_admin_scoping import admin_url
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.models import DoseEvent, Prescription

pytestmark = pytest.mark.django_db

LONG_REASON = ("The patient reported dizziness on standing; we halve the dose and review in a week. " * 30)[:2000]


# --- long audit reasons are kept whole -------------------------------------------------------


def test_long_dose_change_reason_in_the_admin(client, world: World):
    rx = world.rx
    client.force_login(world.users["clinician"])
    url = admin_url("change_dose", "prescription", rx.pk)
    data = {"new_dose": "25", "effective_date": timezone.localdate().isoformat()}
    # The admin's form takes up to 500 characters and says so beside the field.
    response = client.post(url, {**data, "reason": LONG_REASON})
    assert response.status_code == 200
    assert "at most 500 characters" in str(response.context["form"].errors["reason"])
    assert not Prescription.objects.filter(replaces=rx).exists()
    # 500 characters, far beyond the history's old 100-character column, are kept whole.
    reason = LONG_REASON[:500]
    response = client.post(url, {**data, "reason": reason})
    assert response.status_code == 302
    new = Prescription.objects.get(replaces=rx)
    assert new.change_reason == reason
    rx.refresh_from_db()
    assert rx.history.latest().history_change_reason == f"Superseded by a dose change: {reason}"


def test_long_reasons_in_the_api(world: World):
    client = client_for(world, "clinician")
    response = client.post(
        f"/api/prescriptions/{world.rx.pk}/change-dose/",
        {"new_dose": "100", "effective_date": timezone.localdate().isoformat(), "reason": LONG_REASON},
        format="json",
    )
    assert response.status_code == 201, response.content[:500]
    assert response.json()["change_reason"] == LONG_REASON

    response = client.post(f"/api/dose-events/{world.event.pk}/entered-in-error/", {"reason": LONG_REASON}, "json")
    assert response.status_code == 200, response.content[:500]
    event = DoseEvent.objects.get(pk=world.event.pk)
    assert event.entered_in_error_reason == LONG_REASON
    assert event.history.latest().history_change_reason == f"Entered in error: {LONG_REASON}"


def test_long_entered_in_error_reason_in_the_admin(client, world: World):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    rx = world.rx
    client.force_login(world.users["clinician"])
    response = client.post(
        admin_url("changelist", "prescription"),
        {"action": "mark_entered_in_error", ACTION_CHECKBOX_NAME: [rx.pk], "confirm": "yes", "reason": LONG_REASON},
    )
    assert response.status_code == 302
    rx.refresh_from_db()
    assert rx.entered_in_error_reason == LONG_REASON
    assert rx.history.latest().history_change_reason == f"Entered in error: {LONG_REASON}"


# --- JSON nested thousands deep -------------------------------------------------------------


@pytest.mark.parametrize("persona", ["clinician", "patient_a"])
@pytest.mark.parametrize("shape", ["[", '{"a":'])
def test_deeply_nested_json_is_a_400(world: World, persona, shape):
    closing = "]" if shape == "[" else "}"
    body = shape * 5000 + "1" + closing * 5000
    client = client_for(world, persona)
    for url in ("/api/dose-events/", f"/api/prescriptions/{world.rx.pk}/change-dose/"):
        response = client.post(url, body, content_type="application/json")
        assert response.status_code in (400, 403), (url, response.status_code)
        if response.status_code == 400:
            assert "nested" in response.content.decode()


def test_ordinary_nesting_still_parses(world: World):
    client = client_for(world, "clinician")
    response = client.post(
        "/api/prescriptions/preview/",
        {"patient": world.patient_a.pk, "drug": world.rx.drug_id, "dose": "50", "start_date": "2026-06-01"},
        format="json",
    )
    assert response.status_code in (200, 400)  # parsed; the answer is about the regimen, not the JSON


# --- huge and non-finite numbers as ids -----------------------------------------------------


@pytest.mark.parametrize("value", ["1e999", "-1e999", "NaN", "inf", "99999999999999999999999", "1.5", "%00"])
def test_odd_ids_in_api_urls_and_filters(world: World, value):
    client = client_for(world, "clinician")
    for url in (
        f"/api/prescriptions/{value}/",
        f"/api/patients/{value}/",
        f"/api/dose-events/{value}/entered-in-error/",
        f"/api/dose-events/?patient={value}",
        f"/api/prescriptions/?patient={value}",
        f"/api/flags/?patient={value}",
        f"/api/planned-doses/?prescription={value}",
    ):
        response = client.post(url, {"reason": "x"}, format="json") if "entered" in url else client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)


@pytest.mark.parametrize("value", ["1e999", "NaN", "99999999999999999999999"])
def test_odd_ids_in_api_bodies(world: World, value):
    client = client_for(world, "clinician")
    response = client.post(
        "/api/dose-events/",
        f'{{"prescription": {value}, "occurred_at": "{timezone.now().isoformat()}"}}',
        content_type="application/json",
    )
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["1e999", "99999999999999999999999"])
def test_odd_ids_in_admin_urls_and_filters(client, clinician, patient, value):
    client.force_login(clinician.user)
    for url in (
        admin_url("change", "patient", "X").replace("X", value),
        admin_url("history", "patient", "X").replace("X", value),
        admin_url("changelist", "prescription") + f"?patient__id__exact={value}",
        admin_url("changelist", "doseevent") + f"?prescription={value}",
    ):
        response = client.get(url)
        assert response.status_code in (302, 400, 404), (url, response.status_code)


# --- NUL bytes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"q": "smith\x00"},
        {"role": "nurse\x00"},
        {"is_active__exact": "1\x00"},
        {"patient__record_number": "N\x00"},
    ],
)
@pytest.mark.parametrize("model", ["patient", "prescription", "doseevent", "flag", "clinician", "drug"])
def test_nul_in_admin_search_and_filters(client, clinician, patient, model, query):
    client.force_login(clinician.user)
    response = client.get(admin_url("changelist", model), query)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_nul_in_admin_autocomplete(client, clinician, patient):
    client.force_login(clinician.user)
    response = client.get(
        "/admin/autocomplete/",
        {"term": "sm\x00ith", "app_label": "tracker", "model_name": "prescription", "field_name": "patient"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize("persona", ["clinician", "patient_a"])
def test_nul_in_api_filters_and_bodies(world: World, persona):
    client = client_for(world, persona)
    for url in ("/api/patients/?search=a%00b", "/api/flags/?kind=a%00", "/api/drugs/?search=ser%00"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert "NUL" in response.json()["detail"]
    response = client.post(
        "/api/side-effects/",
        {"patient": world.patient_a.pk, "effect": "other", "severity": "mild", "description": "dizzy\x00"},
        format="json",
    )
    assert response.status_code == 400
