"""seed_demo: a second run changes nothing, and the logins it prints work."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from tracker.models import Assessment, DoseEvent, Patient, PlannedDose, Prescription

pytestmark = pytest.mark.django_db
LOGIN_LINE = re.compile(r"^\s+(prescriber|nurse|superuser|patient)\s+(\S+)\s+(\S+)", re.MULTILINE)


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, object]:
    """Row counts of every model, plus the values a careless re-seed would change."""
    return {
        "counts": {model._meta.label: model.objects.count() for model in apps.get_models()},
        "record_numbers": sorted(Patient.objects.values_list("record_number", flat=True)),
        "prescriptions": sorted(
            (rn, drug, str(dose), status, str(start))
            for rn, drug, dose, status, start in Prescription.objects.values_list(
                "patient__record_number", "drug__name", "dose", "status", "start_date"
            )
        ),
        "planned": sorted(
            (rn, str(due), status)
            for rn, due, status in PlannedDose.objects.values_list("patient__record_number", "due_at", "status")
        ),
        "events": sorted(DoseEvent.objects.values_list("patient__record_number", "occurred_at", "outcome")),
        "scores": sorted(
            Assessment.objects.values_list("patient__record_number", "instrument", "completed_at", "total")
        ),
    }


def test_seed_demo_twice_leaves_the_same_data() -> None:
    seed()
    first = snapshot()
    seed()
    assert snapshot() == first
    # It did seed what the demo promises.
    assert first["counts"]["tracker.Patient"] == 20
    assert first["counts"]["tracker.Clinic"] == 1
    assert first["counts"]["tracker.Clinician"] == 2
    assert first["counts"]["tracker.DoseEvent"] > 500
    drugs = {p[1] for p in first["prescriptions"]}
    assert {"sertraline", "venlafaxine", "methylphenidate", "aripiprazole", "lorazepam", "esketamine"} <= drugs
    assert ("RVP-0001", "sertraline", "100.00", "active") in {p[:4] for p in first["prescriptions"]}


def test_seeded_history_is_realistic() -> None:
    seed()
    # Doses withdrawn by a plan change (cancelled) were never due.
    past = PlannedDose.objects.filter(due_at__lt=timezone.now() - dt.timedelta(hours=2)).exclude(status="cancelled")
    taken = past.filter(status=PlannedDose.Status.TAKEN).count()
    assert 0.8 <= taken / past.count() <= 0.95  # realistic adherence, with gaps for some patients
    assert Patient.objects.values("timezone").distinct().count() >= 5
    # Lorazepam steps down through versions, each replacing the one before.
    taper = Prescription.objects.filter(patient__record_number="RVP-0013", drug__name="lorazepam").order_by("id")
    assert [str(rx.dose) for rx in taper] == ["1.00", "1.00", "0.50", "0.50"]
    assert all(later.replaces_id == earlier.id for earlier, later in itertools.pairwise(taper))
    # Esketamine is given in the clinic and recorded by a clinician, but for the one report of
    # a dose taken at home that the demo shows at the top of the worklist.
    esk = DoseEvent.objects.filter(prescription__drug__name="esketamine")
    assert esk.filter(location="clinic", reporter="clinician").count() > 1
    outside = esk.exclude(location="clinic", reporter="clinician")
    assert list(outside.values_list("patient__record_number", "location", "reporter")) == [
        ("RVP-0016", "home", "patient")
    ]


def test_printed_clinician_logins_open_the_admin(client) -> None:
    logins = {role: (username, password) for role, username, password in LOGIN_LINE.findall(seed())}
    assert {"prescriber", "nurse", "superuser", "patient"} <= logins.keys()
    # Through the real sign-in pages (client.login() would skip the brute-force backend's checks).
    for role in ("prescriber", "nurse", "superuser"):
        username, password = logins[role]
        response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
        assert response.status_code == 302, role
        assert client.get("/admin/").status_code == 200, role
        client.post("/admin/logout/")
    username, password = logins["patient"]
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302
    assert not get_user_model().objects.get(username=username).is_staff


def test_every_patient_login_is_printed_with_the_course_it_shows() -> None:
    printed = seed()
    assert "Clinicians sign in at /admin/" in printed
    assert "Patients sign in at /accounts/login/" in printed
    with_logins = Patient.objects.filter(user__isnull=False).select_related("user")
    assert with_logins.count() >= 4
    for patient in with_logins:
        line = next(row for row in printed.splitlines() if f" {patient.user.username} " in row)
        courses = patient.prescriptions.filter(status="active").select_related("drug")
        assert courses, patient
        for rx in courses:
            assert f"{rx.drug} {rx.dose_text}" in line, line


def test_demo_antipsychotic_weights_raise_the_weight_flag_for_one_patient() -> None:
    from tracker.models import Flag, FlagKind
    from tracker.rules import side_effects

    seed()
    gaining = Patient.objects.get(record_number="RVP-0011")
    assert list(gaining.weights.order_by("measured_at").values_list("weight_kg", flat=True)) == [
        Decimal("68.4"),
        Decimal("70.1"),
        Decimal("72.3"),
    ]
    assert gaining.weight_kg == Decimal("72.3")  # the latest is the current weight
    side_effects.sweep(now=timezone.now())
    (flag,) = Flag.objects.filter(kind=FlagKind.SE_METABOLIC_WEIGHT)
    assert flag.patient == gaining
    assert flag.message.startswith("Weight up 5.7 % on Aripiprazole")
