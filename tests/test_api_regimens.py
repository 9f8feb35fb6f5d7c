"""The API prescribes every regimen the admin does, through the same ``Regimen.specs``.

Time is frozen as in tests/test_admin_prescribing.py (Sunday 1 March 2026, a week before New
York's spring-forward change), and the same input gives the same schedules and planned doses
whether a prescriber uses the admin's form or ``POST /api/prescriptions/`` with a ``regimen``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories
from tests.test_admin_prescribing import FRI, MON, MONDAY, NOW, THU, WED, form, url
from tracker.models import DoseSchedule, PlannedDose, Prescription
from tracker.services.prescriptions import prescribe

pytestmark = pytest.mark.django_db

ESKETAMINE_PREVIEW = [  # the admin test's preview, as instants with New York's offset
    "2026-03-02T10:00:00-05:00",
    "2026-03-05T10:00:00-05:00",
    "2026-03-09T10:00:00-04:00",  # after the spring-forward: still 10:00 on the clinic's clock
    "2026-03-12T10:00:00-04:00",
    "2026-03-16T10:00:00-04:00",
    "2026-03-19T10:00:00-04:00",
    "2026-03-23T10:00:00-04:00",
    "2026-03-26T10:00:00-04:00",
]


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


def ny_patient(clinic, clinician, number: str):
    return factories.PatientFactory(
        clinic=clinic,
        responsible_clinician=clinician,
        record_number=number,
        timezone="America/New_York",
        date_of_birth=dt.date(1980, 5, 1),
        weight_kg=Decimal("70"),
    )


@pytest.fixture
def patient(clinic, clinician):
    return ny_patient(clinic, clinician, "N-0200")


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api(clinician) -> APIClient:
    return api_as(clinician.user)


def body(patient, drug: str, dose: str, **regimen) -> dict:
    return {
        "patient": patient.pk,
        "drug": factories.drug(drug).pk,
        "dose": dose,
        "start_date": MONDAY.isoformat(),
        "indication": "Treatment-resistant depression",
        "regimen": {"times_of_day": ["10:00"], **regimen},
    }


def plan_of(rx: Prescription) -> tuple[list, list]:
    schedules = list(
        rx.schedules.order_by("start_date").values_list(
            "phase", "kind", "weekdays", "interval_days", "times_of_day", "start_date", "end_date"
        )
    )
    doses = list(PlannedDose.objects.filter(prescription=rx).order_by("due_at").values_list("due_at", "local_date"))
    return schedules, doses


def test_esketamine_phases_give_the_admins_schedules_and_planned_doses(api, client, clinic, clinician, patient):
    response = api.post(
        "/api/prescriptions/", body(patient, "esketamine", "56", kind="esketamine_phases", weekdays=[MON, THU]), "json"
    )
    assert response.status_code == 201, response.json()
    shown = sorted(response.json()["schedules"], key=lambda s: s["start_date"])
    assert [(s["phase"], s["kind"], s["weekdays"], s["start_date"]) for s in shown] == [
        ("induction", "weekdays", [MON, THU], "2026-03-02"),
        ("maintenance", "weekdays", [MON], "2026-03-30"),
        ("continuation", "every_n_days", [], "2026-04-27"),
    ]
    by_api = Prescription.objects.get(pk=response.json()["id"])
    first = PlannedDose.objects.filter(prescription=by_api).order_by("due_at").first()
    assert first.due_at == dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)  # 10:00 EST

    # The same input through the admin's form, for a twin patient: the same plan.
    twin = ny_patient(clinic, clinician, "N-0201")
    client.force_login(clinician.user)
    admin_form = form("esketamine", "56", "esketamine_phases", weekdays=[str(MON), str(THU)])
    assert client.post(url(twin), admin_form).status_code == 302
    by_admin = Prescription.objects.get(patient=twin)
    assert plan_of(by_api) == plan_of(by_admin)
    # The planning horizon's sessions, 10:00 in New York either side of the spring-forward.
    assert [due.astimezone(patient.zone).isoformat() for due, _ in plan_of(by_api)[1]] == ESKETAMINE_PREVIEW[:4]


def test_the_preview_shows_the_admins_sessions_in_the_patients_offset_and_saves_nothing(api, patient):
    data = body(patient, "esketamine", "56", kind="esketamine_phases", weekdays=[MON, THU])
    del data["dose"]
    response = api.post("/api/prescriptions/preview/", data, "json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"timezone": "America/New_York", "due_at": ESKETAMINE_PREVIEW}
    assert not Prescription.objects.filter(patient=patient).exists()


def test_the_preview_takes_raw_schedules_and_refuses_a_bad_time(api, patient):
    data = {
        "patient": patient.pk,
        "drug": factories.drug("lorazepam").pk,
        "start_date": MONDAY.isoformat(),
        "schedules": [{"times_of_day": ["08:00", "20:00"]}],
    }
    response = api.post("/api/prescriptions/preview/", data, "json")
    assert response.json()["due_at"][:2] == ["2026-03-02T08:00:00-05:00", "2026-03-02T20:00:00-05:00"]
    data["schedules"] = [{"times_of_day": ["8am"]}]
    response = api.post("/api/prescriptions/preview/", data, "json")
    assert response.status_code == 400
    assert "HH:MM" in response.json()["times_of_day"][0]
    regimen = body(patient, "lorazepam", "1", kind="times", times_of_day=["8am"])
    response = api.post("/api/prescriptions/preview/", regimen, "json")
    assert response.status_code == 400
    assert "HH:MM" in response.json()["regimen"]["times_of_day"][0]


def test_a_ketamine_series_plans_exactly_its_infusions(api, patient):
    data = body(patient, "ketamine", "0.5", kind="ketamine_series", weekdays=[MON, WED, FRI], infusions=6)
    preview = api.post("/api/prescriptions/preview/", data, "json").json()["due_at"]
    assert [p[:10] for p in preview] == [
        "2026-03-02",
        "2026-03-04",
        "2026-03-06",
        "2026-03-09",
        "2026-03-11",
        "2026-03-13",
    ]
    response = api.post("/api/prescriptions/", data, "json")
    assert response.status_code == 201, response.json()
    rx = Prescription.objects.get(pk=response.json()["id"])
    assert PlannedDose.objects.filter(prescription=rx).count() == 6


@pytest.mark.parametrize(
    ("drug", "regimen", "field", "message"),
    [
        ("sertraline", {"kind": "esketamine_phases", "weekdays": [0, 3]}, "kind", "is for esketamine, not Sertraline"),
        ("esketamine", {"kind": "times"}, "kind", "is given in clinic sessions"),
        (
            "esketamine",
            {"kind": "esketamine_phases", "weekdays": [1, 3]},
            "weekdays",
            "tick the start date's day (Monday)",
        ),
        ("lorazepam", {"kind": "weekdays"}, "weekdays", "Choose at least one weekday."),
        ("lorazepam", {"kind": "every_n_days"}, "interval_days", "N of 2 or more"),
        ("lorazepam", {"kind": "prn"}, "prn_max_doses_per_day", "how many as-needed doses a day"),
        ("lorazepam", {"kind": "times", "times_of_day": ["8am"]}, "times_of_day", "HH:MM on a 24-hour clock"),
        ("lorazepam", {"kind": "weekdays", "weekdays": [9]}, "weekdays", "less than or equal to 6"),
        ("lorazepam", {"kind": "daily"}, "kind", "is not a valid choice"),
    ],
)
def test_a_regimen_that_does_not_fit_is_a_400_on_its_field(api, patient, drug, regimen, field, message):
    dose = {"sertraline": "50", "esketamine": "56", "lorazepam": "1"}[drug]
    response = api.post("/api/prescriptions/", body(patient, drug, dose, **regimen), "json")
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"regimen"}, errors
    assert message in str(errors["regimen"][field]), errors
    assert not Prescription.objects.filter(patient=patient).exists()


def test_schedules_and_regimen_are_exclusive(api, patient):
    both = {**body(patient, "lorazepam", "1", kind="times"), "schedules": [{"times_of_day": ["08:00"]}]}
    response = api.post("/api/prescriptions/", both, "json")
    assert response.status_code == 400
    assert response.json() == {"regimen": ["Send either schedules or a regimen, not both."]}
    neither = {k: v for k, v in both.items() if k not in ("schedules", "regimen")}
    response = api.post("/api/prescriptions/", neither, "json")
    assert response.status_code == 400
    assert response.json() == {"schedules": ["Send the schedules, or a regimen to build them from."]}
    response = api.post("/api/prescriptions/", {**neither, "schedules": [{"times_of_day": ["09:00"]}]}, "json")
    assert response.status_code == 201  # raw schedules still work alone
    assert Prescription.objects.filter(patient=patient).count() == 1


def test_reschedule_takes_a_regimen_keeps_the_dose_and_the_past(api, clinician, patient):
    rx = prescribe(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("50"),
        start_date=dt.date(2026, 2, 20),
        prescriber=clinician,
        now=dt.datetime(2026, 2, 20, 5, 0, tzinfo=dt.UTC),
    )
    past = list(PlannedDose.objects.filter(prescription=rx, due_at__lt=NOW).values_list("id", "due_at", "status"))
    path = f"/api/prescriptions/{rx.pk}/reschedule/"
    refused = api.post(path, {"reason": " ", "regimen": {"kind": "times", "times_of_day": ["21:00"]}}, "json")
    assert refused.status_code == 400 and "reason" in refused.json()
    refused = api.post(path, {"reason": "Sleepy in the day", "regimen": {"kind": "weekdays"}}, "json")
    assert refused.status_code == 400
    assert refused.json() == {"regimen": {"weekdays": ["Choose at least one weekday."]}}

    change = {"reason": "Sleepy in the day", "regimen": {"kind": "times", "times_of_day": ["21:00"]}}
    response = api.post(path, change, "json")
    assert response.status_code == 200, response.json()
    assert response.json()["id"] == rx.pk and response.json()["dose"] == "50.00"
    live = rx.schedules.filter(active_until__isnull=True).get()
    assert (live.kind, live.times_of_day) == (DoseSchedule.Kind.DAILY, ["21:00"])
    assert (live.created_by, live.change_reason) == (clinician.user, "Sleepy in the day")  # who and why
    assert rx.schedules.count() == 2  # the old version is kept, ended
    kept = PlannedDose.objects.filter(id__in=[i for i, _, _ in past]).values_list("id", "due_at", "status")
    assert list(kept) == past
    upcoming = PlannedDose.objects.filter(prescription=rx, due_at__gt=NOW).exclude(status="cancelled")
    assert {d.due_at.astimezone(patient.zone).hour for d in upcoming} == {21}


def test_only_prescribers_of_the_clinic_preview_or_reschedule(clinic, other_clinic, clinician, patient):
    rx = prescribe(
        patient=patient, drug=factories.drug("sertraline"), dose=Decimal("50"), start_date=MONDAY, prescriber=clinician
    )
    change = {"reason": "Later", "regimen": {"kind": "times", "times_of_day": ["09:00"]}}
    data = body(patient, "sertraline", "50", kind="times")
    nurse = api_as(factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-n").user)
    assert nurse.post(f"/api/prescriptions/{rx.pk}/reschedule/", change, "json").status_code == 403
    assert nurse.post("/api/prescriptions/preview/", data, "json").status_code == 403
    other = api_as(factories.ClinicianFactory(clinic=other_clinic, user__username="dr-south").user)
    assert other.post(f"/api/prescriptions/{rx.pk}/reschedule/", change, "json").status_code == 404
    response = other.post("/api/prescriptions/preview/", data, "json")
    assert response.status_code == 400 and "patient" in response.json()
    assert APIClient().post("/api/prescriptions/preview/", data, "json").status_code == 401
