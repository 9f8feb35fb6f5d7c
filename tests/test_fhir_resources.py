"""FHIR export, issue 19: the resources behind the totals and the names.

Questionnaire answers as QuestionnaireResponses with LOINC item and answer codes (clinical-reference
§4, §8), the score Observation derived from them with a coded band; the prescriber, the
administering clinician and the clinic as Practitioner and Organization resources. Each bundle is
parsed with fhir.resources (R4B) and every reference resolves inside it, on every patient of the
seeded demo and on the API test world.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from fhir.resources.R4B.bundle import Bundle

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker import fhir
from tracker.models import Assessment, Patient
from tracker.services.assessments import submit_assessment

pytestmark = pytest.mark.django_db

PHQ9_ITEMS = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8"]
GAD7_ITEMS = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
LA = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1", 3: "LA6571-9"}
US_CORE_PATIENT = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"


def resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_url(bundle: dict) -> dict[str, dict]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def walk(value: object):
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def assert_valid(bundle: dict) -> None:
    """R4B parses it, every reference resolves inside it, and every fullUrl is used once."""
    Bundle.model_validate(bundle)
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    dangling = [v["reference"] for v in walk(bundle) if "reference" in v and v["reference"] not in set(urls)]
    assert not dangling


def has_offset(text: str) -> bool:
    return dt.datetime.fromisoformat(text).tzinfo is not None


def export(world: World) -> dict:
    response = client_for(world, "clinician").get(f"/api/patients/{world.patient_a.pk}/fhir/")
    assert response.status_code == 200
    bundle = response.json()
    assert_valid(bundle)
    return bundle


@pytest.fixture(scope="module")
def demo_bundles(django_db_setup, django_db_blocker) -> list[dict]:
    """Every patient of the seeded demo, exported once for the module."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("seed_demo", stdout=StringIO())
        bundles = [fhir.patient_bundle(p) for p in Patient.objects.order_by("pk")]
        transaction.set_rollback(True)
    return bundles


def test_every_demo_bundle_validates_and_its_references_resolve(demo_bundles: list[dict]) -> None:
    assert len(demo_bundles) >= 10
    for bundle in demo_bundles:
        assert_valid(bundle)


def test_every_demo_patient_has_a_gender_and_the_esketamine_courses_carry_rxnorm(demo_bundles: list[dict]) -> None:
    """seed_demo gives each patient a gender (so each claims US Core Patient), and esketamine's
    RxNorm code (SCDF 2201623, tracker/fhir_codes.py) is in the exported bundles."""
    patients = [resources(bundle, "Patient")[0] for bundle in demo_bundles]
    assert all(p["gender"] in {"female", "male", "other"} for p in patients)
    assert all(p["meta"]["profile"][0].startswith(US_CORE_PATIENT) for p in patients)
    esketamine = [
        c
        for bundle in demo_bundles
        for r in resources(bundle, "MedicationRequest")
        for c in r["medicationCodeableConcept"].get("coding", [])
        if c["system"] == fhir.RXNORM and c["code"] == "2201623"
    ]
    assert esketamine, "the demo's esketamine courses carry esketamine's RxNorm code"


def test_demo_scores_are_derived_from_their_answers(demo_bundles: list[dict]) -> None:
    seen = set()
    for bundle in demo_bundles:
        urls = by_url(bundle)
        for score in resources(bundle, "Observation"):
            if score["category"][0]["coding"][0]["code"] != "survey":
                continue
            (derived,) = score["derivedFrom"]
            answers = urls[derived["reference"]]
            assert answers["resourceType"] == "QuestionnaireResponse"
            code = score["code"]["coding"][0]["code"]
            seen.add(code)
            items = PHQ9_ITEMS if code == "44261-6" else GAD7_ITEMS
            assert [i["linkId"] for i in answers["item"]] == [f"/{c}" for c in items]
            # The total is the sum of the answers' positions in the LA list, and each component repeats one.
            codes = [i["answer"][0]["valueCoding"]["code"] for i in answers["item"]]
            assert score["valueInteger"] == sum(list(LA.values()).index(c) for c in codes)
            assert [c["valueCodeableConcept"]["coding"][0]["code"] for c in score["component"]] == codes
            assert answers["authored"] == score["effectiveDateTime"] and has_offset(answers["authored"])
    assert seen == {"44261-6", "70274-6"}, "the demo has both PHQ-9s and GAD-7s"


def test_phq9_answers_item_9_and_the_coded_band(world: World) -> None:
    bundle = export(world)
    urls = by_url(bundle)
    answers = {r["id"]: r for r in resources(bundle, "QuestionnaireResponse")}[f"answers-{world.assessment.pk}"]
    assert answers["questionnaire"] == "http://loinc.org/q/44249-1"
    assert answers["status"] == "completed"
    assert answers["subject"]["reference"] == fhir.full_url("Patient", world.patient_a.pk)
    # The patient answered in the portal: they are author and source.
    assert answers["author"]["reference"] == answers["source"]["reference"] == answers["subject"]["reference"]
    item9 = answers["item"][-1]
    assert item9["linkId"] == "/44260-8" and item9["text"].startswith("Thoughts that you would be better off dead")
    assert item9["answer"] == [
        {"valueCoding": {"system": "http://loinc.org", "code": "LA6569-3", "display": "Several days"}}
    ]

    score = {r["id"]: r for r in resources(bundle, "Observation")}[f"score-{world.assessment.pk}"]
    assert urls[score["derivedFrom"][0]["reference"]] is answers
    assert score["valueInteger"] == 9
    (band,) = score["interpretation"]
    assert band["coding"] == [{"system": "urn:tracker:score-band:phq9", "code": "mild", "display": "mild"}]
    assert score["performer"][0]["reference"] == fhir.full_url("Patient", world.patient_a.pk)
    assert score["component"][-1]["code"]["coding"][0]["code"] == "44260-8"


def test_a_clinician_entered_gad7_names_its_clinician(world: World) -> None:
    clinician = world.rx.prescriber
    submitted = submit_assessment(
        patient=world.patient_a,
        instrument="gad7",
        answers=[0, 1, 2, 3, 3, 3, 3],
        source="clinician",
        recorded_by=clinician.user,
    )
    bundle = export(world)
    urls = by_url(bundle)
    answers = {r["id"]: r for r in resources(bundle, "QuestionnaireResponse")}[f"answers-{submitted.assessment.pk}"]
    assert answers["questionnaire"] == "http://loinc.org/q/69737-5"
    assert [i["answer"][0]["valueCoding"]["code"] for i in answers["item"]] == [LA[v] for v in (0, 1, 2, 3, 3, 3, 3)]
    assert "source" not in answers
    practitioner = urls[answers["author"]["reference"]]
    assert practitioner["resourceType"] == "Practitioner"
    assert practitioner["name"][0]["family"] == clinician.user.last_name
    score = {r["id"]: r for r in resources(bundle, "Observation")}[f"score-{submitted.assessment.pk}"]
    assert score["valueInteger"] == 15
    assert score["interpretation"][0]["coding"][0]["code"] == "severe"
    assert score["performer"] == [answers["author"]]


def test_answers_entered_in_error_go_out_as_such(world: World) -> None:
    Assessment.objects.filter(pk=world.assessment.pk).update(
        entered_in_error_at=dt.datetime.now(dt.UTC), entered_in_error_reason="Wrong patient"
    )
    bundle = export(world)
    answers = {r["id"]: r for r in resources(bundle, "QuestionnaireResponse")}[f"answers-{world.assessment.pk}"]
    assert answers["status"] == "entered-in-error"


def test_prescriber_clinician_and_clinic_are_resources(world: World) -> None:
    bundle = export(world)
    urls = by_url(bundle)
    (patient,) = resources(bundle, "Patient")
    clinic = urls[patient["managingOrganization"]["reference"]]
    assert clinic["resourceType"] == "Organization" and clinic["name"] == world.patient_a.clinic.name
    assert clinic["identifier"] == [{"system": "urn:tracker:clinic", "value": world.patient_a.clinic.slug}]
    assert urls[patient["generalPractitioner"][0]["reference"]]["resourceType"] == "Practitioner"
    for request in resources(bundle, "MedicationRequest"):
        prescriber = urls[request["requester"]["reference"]]
        assert prescriber["id"] == f"practitioner-{world.rx.prescriber.pk}"
    given = {r["id"]: r for r in resources(bundle, "MedicationAdministration")}[f"session-{world.session.pk}"]
    nurse = urls[given["performer"][0]["actor"]["reference"]]
    assert nurse["id"] == f"practitioner-{world.session.administered_by.pk}"
    # One Practitioner per clinician, however many records name them.
    ids = [r["id"] for r in resources(bundle, "Practitioner")]
    assert len(ids) == len(set(ids)) == 1


def test_demo_medication_requests_claim_us_core_for_esketamine_only(demo_bundles: list[dict]) -> None:
    """US Core's medication value set takes clinical drugs (SCDF ...), not ingredients: only the
    esketamine courses (SCDF 2201623) claim us-core-medicationrequest; the ingredient-coded do not."""
    requests = [r for bundle in demo_bundles for r in resources(bundle, "MedicationRequest")]
    claimed = [
        r for r in requests if any("us-core-medicationrequest" in p for p in r.get("meta", {}).get("profile", []))
    ]
    rxcuis = [
        {c["code"] for c in r["medicationCodeableConcept"].get("coding", []) if c["system"] == fhir.RXNORM}
        for r in claimed
    ]
    assert claimed and all(codes == {"2201623"} for codes in rxcuis)
    esketamine = [
        r for r in requests if "2201623" in {c["code"] for c in r["medicationCodeableConcept"].get("coding", [])}
    ]
    assert len(claimed) == len(esketamine) < len(requests)
    print(f"\nMedicationRequests: {len(requests)}, claiming US Core: {len(claimed)}")
