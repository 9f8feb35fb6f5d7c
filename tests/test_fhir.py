"""FHIR export: a seeded demo patient's bundle validates with fhir.resources (R4B), and the
mapping carries the codes and timings clinical-reference §8 asks for."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from tests.factories import drug
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker import fhir, fhir_codes
from tracker.models import DoseEvent, Patient, Prescription
from tracker.services.doses import record_dose
from tracker.services.prescriptions import ScheduleSpec, prescribe

pytestmark = pytest.mark.django_db


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def has_offset(text: str) -> bool:
    return dt.datetime.fromisoformat(text).tzinfo is not None


@pytest.fixture(scope="module")
def demo_bundle(django_db_setup, django_db_blocker) -> dict:
    """Seed the demo once for the module and export its richest patient (most prescription versions)."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        patient = max(
            Patient.objects.filter(prescriptions__isnull=False).distinct(),
            key=lambda p: (p.prescriptions.filter(replaces__isnull=False).count(), p.dose_events.count()),
        )
        bundle = fhir.patient_bundle(patient)
        transaction.set_rollback(True)
    return bundle


def test_seeded_demo_patient_bundle_validates_as_r4b(demo_bundle: dict) -> None:
    parsed = Bundle.model_validate(demo_bundle)
    assert parsed.type == "collection"
    kinds = {e["resource"]["resourceType"] for e in demo_bundle["entry"]}
    assert {"Patient", "MedicationRequest", "MedicationStatement", "Observation"} <= kinds
    # Every reference inside the bundle resolves to an entry of the bundle.
    urls = {e["fullUrl"] for e in demo_bundle["entry"]}
    references = [v for v in _walk(demo_bundle) if isinstance(v, dict) and "reference" in v]
    assert references and all(r["reference"] in urls for r in references)


def test_demo_bundle_mapping(demo_bundle: dict) -> None:
    requests = resources(demo_bundle, "MedicationRequest")
    # RxNorm only where tracker/fhir_codes.py has a verified code (this patient's lorazepam has none).
    verified = {row.code for row in fhir_codes.RXNORM.values() if row.verified}
    rxnorm = [
        c for r in requests for c in r["medicationCodeableConcept"].get("coding", []) if c["system"] == fhir.RXNORM
    ]
    assert all(c["code"] in verified for c in rxnorm)
    versions = [r for r in requests if "priorPrescription" in r]
    assert versions, "a dose change links its versions"
    for request in requests:
        assert request["intent"] == "order" and has_offset(request["authoredOn"])
        for dosage in request["dosageInstruction"]:
            dose = dosage["doseAndRate"][0]["doseQuantity"]
            assert (dose["system"], dose["code"]) == ("http://unitsofmeasure.org", "mg")
            assert "boundsPeriod" in dosage["timing"]["repeat"]
    scores = [o for o in resources(demo_bundle, "Observation") if not o["id"].startswith("weight-")]
    assert {o["code"]["coding"][0]["code"] for o in scores} <= {"44261-6", "70274-6"}
    assert "44261-6" in {o["code"]["coding"][0]["code"] for o in scores}
    for observation in scores:
        assert observation["category"][0]["coding"][0]["code"] == "survey"
        assert isinstance(observation["valueInteger"], int) and has_offset(observation["effectiveDateTime"])
    for statement in resources(demo_bundle, "MedicationStatement"):
        assert has_offset(statement["effectiveDateTime"]) and has_offset(statement["dateAsserted"])


def test_api_export_of_the_world_validates_and_maps_each_kind(world: World) -> None:
    client = client_for(world, "clinician")
    # A clinician-recorded dose becomes a MedicationAdministration; a PRN prescription is "as needed".
    record_dose(prescription=world.rx, occurred_at=world.open_planned.due_at, reporter="clinician", location="clinic")
    prescribe(
        patient=world.patient_a,
        drug=drug("lorazepam"),
        dose=Decimal("1"),
        start_date=world.rx.start_date,
        prescriber=world.rx.prescriber,
        schedules=[ScheduleSpec(kind="prn", prn_max_doses_per_day=2)],
    )
    response = client.get(f"/api/patients/{world.patient_a.pk}/fhir/")
    assert response.status_code == 200
    bundle = response.json()
    Bundle.model_validate(bundle)

    administrations = {a["id"]: a for a in resources(bundle, "MedicationAdministration")}
    given = administrations.pop(f"session-{world.session.pk}")
    (staff_dose,) = administrations.values()  # the session's own dose event is not exported twice
    assert staff_dose["status"] == "completed"
    assert staff_dose["request"]["reference"] == fhir.full_url("MedicationRequest", world.rx.pk)
    assert given["status"] == "completed" and given["dosage"]["dose"]["value"] == 56
    assert has_offset(given["effectivePeriod"]["start"]) and has_offset(given["effectivePeriod"]["end"])
    assert given["request"]["reference"] == fhir.full_url("MedicationRequest", world.esketamine.pk)
    statements = resources(bundle, "MedicationStatement")
    assert {s["status"] for s in statements} == {"completed"} and len(statements) == 1
    assert statements[0]["informationSource"]["reference"] == fhir.full_url("Patient", world.patient_a.pk)

    by_id = {r["id"]: r for r in resources(bundle, "MedicationRequest")}
    sertraline = by_id[f"rx-{world.rx.pk}"]["dosageInstruction"][0]
    assert sertraline["asNeededBoolean"] is False
    assert sertraline["timing"]["repeat"] | {"boundsPeriod": None} == {
        "frequency": 2,
        "period": 1,
        "periodUnit": "d",
        "timeOfDay": ["08:00:00", "20:00:00"],
        "boundsPeriod": None,
    }
    assert sertraline["maxDosePerPeriod"]["denominator"]["code"] == "d"
    esketamine = by_id[f"rx-{world.esketamine.pk}"]["dosageInstruction"][0]
    assert esketamine["timing"]["repeat"]["dayOfWeek"] == ["tue", "fri"]
    prn = [r for r in by_id.values() if r["dosageInstruction"][0]["asNeededBoolean"]]
    assert len(prn) == 1 and prn[0]["dosageInstruction"][0]["maxDosePerPeriod"]["numerator"]["value"] > 0

    (flag,) = resources(bundle, "Flag")
    assert flag["status"] == "active" and flag["code"]["coding"][0]["code"] == "scale.suicidality"
    # The session's vital signs are partOf its administration (tests/test_fhir_sessions.py).
    score, weight = [o for o in resources(bundle, "Observation") if "partOf" not in o]
    assert score["valueInteger"] == 9 and score["code"]["coding"][0]["code"] == "44261-6"
    # Body weight as a vital sign: LOINC 29463-7 in UCUM kg, at the instant it was measured.
    assert weight["id"] == f"weight-{world.weight.pk}" and weight["status"] == "final"
    assert weight["category"][0]["coding"][0]["code"] == "vital-signs"
    assert weight["code"]["coding"][0] == {"system": fhir.LOINC, "code": "29463-7", "display": "Body weight"}
    assert weight["valueQuantity"] == {"value": 72.4, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    assert has_offset(weight["effectiveDateTime"])


def test_entered_in_error_records_are_exported_as_such(world: World) -> None:
    client = client_for(world, "clinician")
    client.post(f"/api/dose-events/{world.event.pk}/entered-in-error/", {"reason": "Wrong day"}, format="json")
    client.post(f"/api/prescriptions/{world.rx.pk}/change-dose/", _change(), format="json")
    bundle = client.get(f"/api/patients/{world.patient_a.pk}/fhir/").json()
    Bundle.model_validate(bundle)
    statuses = {r["id"]: r["status"] for r in resources(bundle, "MedicationStatement")}
    assert statuses[f"dose-{world.event.pk}"] == "entered-in-error"
    new = Prescription.objects.get(replaces=world.rx)
    requests = {r["id"]: r for r in resources(bundle, "MedicationRequest")}
    assert requests[f"rx-{world.rx.pk}"]["status"] == "stopped"
    assert requests[f"rx-{new.pk}"]["priorPrescription"]["reference"] == fhir.full_url("MedicationRequest", world.rx.pk)
    assert DoseEvent.objects.filter(pk=world.event.pk).exists()


def test_a_weight_entered_in_error_is_exported_as_such(world: World) -> None:
    client = client_for(world, "clinician")
    response = client.post(
        f"/api/weight-measurements/{world.weight.pk}/entered-in-error/", {"reason": "Wrong scales"}, format="json"
    )
    assert response.status_code == 200
    bundle = client.get(f"/api/patients/{world.patient_a.pk}/fhir/").json()
    Bundle.model_validate(bundle)
    statuses = {r["id"]: r["status"] for r in resources(bundle, "Observation")}
    assert statuses[f"weight-{world.weight.pk}"] == "entered-in-error"


def _change() -> dict:
    return {"new_dose": "100", "effective_date": timezone.localdate().isoformat(), "reason": "Titration"}


def _walk(value: object):
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


DATETIME_KEYS = {"effectiveDateTime", "authoredOn", "dateAsserted", "start", "end", "timestamp"}


def test_every_datetime_of_the_demo_bundle_has_an_offset(demo_bundle: dict) -> None:
    values = [v for d in _walk(demo_bundle) for k, v in d.items() if k in DATETIME_KEYS]
    assert len(values) > 20
    assert all("T" in v and has_offset(v) for v in values), [v for v in values if "T" not in v]


def test_flag_follows_acknowledge_and_resolve(world: World) -> None:
    client = client_for(world, "clinician")

    def exported() -> dict:
        bundle = client.get(f"/api/patients/{world.patient_a.pk}/fhir/").json()
        Bundle.model_validate(bundle)
        (flag,) = resources(bundle, "Flag")
        return flag

    opened = exported()
    assert opened["status"] == "active" and opened["meta"]["tag"][0]["code"] == "open"
    assert "end" not in opened["period"]
    assert client.post(f"/api/flags/{world.flag.pk}/acknowledge/").status_code == 200
    acknowledged = exported()
    assert acknowledged["status"] == "active" and acknowledged["meta"]["tag"][0]["code"] == "acknowledged"
    assert "end" not in acknowledged["period"]
    resolved_response = client.post(f"/api/flags/{world.flag.pk}/resolve/", {"note": "Safety plan agreed"}, "json")
    assert resolved_response.status_code == 200, resolved_response.json()
    resolved = exported()
    assert resolved["status"] == "inactive" and resolved["meta"]["tag"][0]["code"] == "resolved"
    assert dt.datetime.fromisoformat(resolved["period"]["end"]) == dt.datetime.fromisoformat(
        resolved_response.json()["resolved_at"].replace("Z", "+00:00")
    ).replace(microsecond=0)
    assert has_offset(resolved["period"]["end"])


def test_a_skip_reason_is_the_statements_status_reason(world: World) -> None:
    response = client_for(world, "patient_a").post(
        "/api/dose-events/",
        {
            "prescription": world.rx.pk,
            "occurred_at": (timezone.now() - dt.timedelta(minutes=10)).isoformat(),
            "outcome": "skipped",
            "skip_reason": "Felt sick",
            "note": "Will take tomorrow",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    bundle = client_for(world, "clinician").get(f"/api/patients/{world.patient_a.pk}/fhir/").json()
    Bundle.model_validate(bundle)
    statement = {s["id"]: s for s in resources(bundle, "MedicationStatement")}[f"dose-{response.json()['id']}"]
    assert statement["status"] == "not-taken"
    assert statement["statusReason"] == [{"text": "Felt sick"}]
    assert statement["note"] == [{"text": "Will take tomorrow"}]
