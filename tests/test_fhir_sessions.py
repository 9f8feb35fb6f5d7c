"""FHIR export, issue 19: an in-clinic session as an Encounter with its MedicationAdministration
and vital signs (clinical-reference §8), and a phased regimen as one timing.repeat per phase."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import drug
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tests.test_fhir_resources import by_url, export, has_offset, resources
from tracker import fhir
from tracker.models import Flag
from tracker.services.prescriptions import ScheduleSpec, prescribe
from tracker.services.sessions import record_bp_decision, start_session

pytestmark = pytest.mark.django_db


def test_a_session_is_an_encounter_with_its_administration_and_vital_signs(world: World) -> None:
    bundle = export(world)
    urls = by_url(bundle)
    session = world.session
    given = {r["id"]: r for r in resources(bundle, "MedicationAdministration")}[f"session-{session.pk}"]
    encounter = urls[given["context"]["reference"]]
    assert encounter["resourceType"] == "Encounter" and encounter["status"] == "finished"
    assert encounter["class"]["code"] == "AMB"
    assert urls[encounter["serviceProvider"]["reference"]]["resourceType"] == "Organization"
    assert encounter["period"] == given["effectivePeriod"]
    start, end = (dt.datetime.fromisoformat(encounter["period"][k]) for k in ("start", "end"))
    assert (start, end) == (
        session.first_device_at.replace(microsecond=0),
        session.discharge_at.replace(microsecond=0),
    )
    assert given["status"] == "completed" and given["dosage"]["dose"]["value"] == 56
    assert given["request"]["reference"] == fhir.full_url("MedicationRequest", world.esketamine.pk)

    vitals = [o for o in resources(bundle, "Observation") if o.get("partOf")]
    assert {o["partOf"][0]["reference"] for o in vitals} == {fhir.full_url("Session", session.pk)}
    assert all(o["encounter"]["reference"] == given["context"]["reference"] for o in vitals)
    panels = {o["id"]: o for o in vitals if o["code"]["coding"][0]["code"] == "85354-9"}
    assert set(panels) == {f"bp-before-{session.pk}", f"bp-40min-{session.pk}", f"bp-discharge-{session.pk}"}
    forty = panels[f"bp-40min-{session.pk}"]
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in forty["component"]] == [
        ("8480-6", 130),
        ("8462-4", 82),
    ]
    assert forty["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    assert dt.datetime.fromisoformat(forty["effectiveDateTime"]) == session.bp_40min_at.replace(microsecond=0)
    before = panels[f"bp-before-{session.pk}"]
    assert dt.datetime.fromisoformat(before["effectiveDateTime"]) == session.bp_before_at.replace(microsecond=0)


def test_a_withheld_dose_is_not_done_with_its_reason_and_the_spo2_goes_out(world: World) -> None:
    session = start_session(
        prescription=world.esketamine,
        administered_by=world.rx.prescriber,
        bp_before_systolic=170,
        bp_before_diastolic=100,
        bp_before_at=timezone.now() - dt.timedelta(minutes=20),
        now=timezone.now() - dt.timedelta(minutes=20),
    ).session
    record_bp_decision(session=session, decision="withheld", reason="Recheck with GP first", by=world.rx.prescriber)
    session.refresh_from_db()
    type(session).objects.filter(pk=session.pk).update(spo2_lowest=96)
    bundle = export(world)
    withheld = {r["id"]: r for r in resources(bundle, "MedicationAdministration")}[f"session-{session.pk}"]
    assert withheld["status"] == "not-done"
    assert withheld["statusReason"] == [{"text": "Recheck with GP first"}]
    assert by_url(bundle)[withheld["performer"][0]["actor"]["reference"]]["resourceType"] == "Practitioner"
    observations = {o["id"]: o for o in resources(bundle, "Observation")}
    before = observations[f"bp-before-{session.pk}"]
    assert [c["valueQuantity"]["value"] for c in before["component"]] == [170, 100]
    assert has_offset(before["effectiveDateTime"])
    spo2 = observations[f"spo2-{session.pk}"]
    assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5"]
    assert spo2["valueQuantity"] == {"value": 96, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}


def test_a_phased_regimen_is_one_timing_repeat_per_phase(world: World) -> None:
    start = timezone.localdate() - dt.timedelta(days=2)
    phased = prescribe(
        patient=world.patient_a,
        drug=drug("esketamine"),
        dose=Decimal("84"),
        start_date=start,
        prescriber=world.rx.prescriber,
        schedules=[
            ScheduleSpec(
                kind="weekdays",
                weekdays=(0, 3),
                times_of_day=("10:00",),
                phase="induction",
                end_date=start + dt.timedelta(days=27),
            ),
            ScheduleSpec(
                kind="weekdays",
                weekdays=(2,),
                times_of_day=("10:00",),
                phase="continuation",
                start_date=start + dt.timedelta(days=28),
            ),
        ],
    )
    bundle = export(world)
    request = {r["id"]: r for r in resources(bundle, "MedicationRequest")}[f"rx-{phased.pk}"]
    induction, continuation = request["dosageInstruction"]
    assert (induction["sequence"], continuation["sequence"]) == (1, 2)
    assert induction["text"].startswith("Induction: ") and continuation["text"].startswith("Continuation: ")
    first, second = induction["timing"]["repeat"], continuation["timing"]["repeat"]
    assert (first["frequency"], first["period"], first["periodUnit"], first["dayOfWeek"]) == (
        2,
        1,
        "wk",
        ["mon", "thu"],
    )
    assert (second["frequency"], second["periodUnit"], second["dayOfWeek"]) == (1, "wk", ["wed"])
    assert dt.date.fromisoformat(first["boundsPeriod"]["start"][:10]) == start
    assert dt.date.fromisoformat(first["boundsPeriod"]["end"][:10]) == start + dt.timedelta(days=27)
    assert dt.date.fromisoformat(second["boundsPeriod"]["start"][:10]) == start + dt.timedelta(days=28)
    assert "end" not in second["boundsPeriod"]


def test_an_interaction_is_a_detected_issue_that_follows_acknowledge_and_resolve(world: World) -> None:
    lorazepam = prescribe(
        patient=world.patient_a,
        drug=drug("lorazepam"),
        dose=Decimal("1"),
        start_date=world.rx.start_date,
        prescriber=world.rx.prescriber,
        schedules=[ScheduleSpec(times_of_day=("22:00",))],
    )
    flag = Flag.objects.create(
        patient=world.patient_a,
        kind="esk.interaction",
        severity=20,
        dedup_key=f"esk.interaction:course:{world.esketamine.pk}:with:{lorazepam.pk}",
        message="Esketamine is prescribed while lorazepam, a CNS depressant, is active.",
        action="Review whether lorazepam should continue.",
    )
    client = client_for(world, "clinician")
    assert client.post(f"/api/flags/{flag.pk}/acknowledge/").status_code == 200
    assert client.post(f"/api/flags/{flag.pk}/resolve/", {"note": "Lorazepam stopped"}, "json").status_code == 200
    bundle = export(world)
    (issue,) = resources(bundle, "DetectedIssue")
    assert issue["code"]["coding"][0]["code"] == "DRG" and issue["severity"] == "moderate"  # warning -> moderate
    assert [i["reference"] for i in issue["implicated"]] == [
        fhir.full_url("MedicationRequest", world.esketamine.pk),
        fhir.full_url("MedicationRequest", lorazepam.pk),
    ]
    assert [m["action"]["coding"][0]["code"] for m in issue["mitigation"]] == ["acknowledged", "resolved"]
    assert issue["mitigation"][1]["action"]["text"] == "Resolved: Lorazepam stopped"
    assert by_url(bundle)[issue["mitigation"][0]["author"]["reference"]]["resourceType"] == "Practitioner"
    assert has_offset(issue["identifiedDateTime"])


def test_every_resource_has_a_narrative_and_vital_signs_declare_their_profile(world: World) -> None:
    bundle = export(world)
    for entry in bundle["entry"]:
        text = entry["resource"]["text"]
        assert text["status"] == "generated"
        assert text["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml"><p>')
        assert entry["resource"]["resourceType"] in text["div"]
    profiles = {
        o["code"]["coding"][0]["code"]: o["meta"]["profile"] for o in resources(bundle, "Observation") if "meta" in o
    }
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/{}|6.1.0"
    assert profiles["85354-9"] == [
        "http://hl7.org/fhir/StructureDefinition/bp",
        us_core.format("us-core-blood-pressure"),
    ]
    assert profiles["29463-7"] == [
        "http://hl7.org/fhir/StructureDefinition/bodyweight",
        us_core.format("us-core-body-weight"),
    ]
    score = {r["id"]: r for r in resources(bundle, "Observation")}[f"score-{world.assessment.pk}"]
    assert "9" in score["text"]["div"] and "<script" not in bundle["entry"][0]["resource"]["text"]["div"]
