"""FHIR export, issue 19: Patient.gender, the US Core 6.1.0 and R4 vital-signs profiles the export
claims, and the catalogue's RxNorm codes.

Each claimed profile is checked here against that profile's own required elements, read off the
resource (not by calling the exporter's claim logic), so a claim on a resource that lacks one
fails. The RxNorm table must cover every catalogue drug, verified with a source or marked.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import drug
from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tests.test_fhir_resources import export, resources
from tracker import fhir, fhir_codes
from tracker.models import AdministrativeGender, Drug
from tracker.services.measurements import record_measurement

pytestmark = pytest.mark.django_db

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/{}|6.1.0"
R4_VITALS = "http://hl7.org/fhir/StructureDefinition/{}"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# Each vital-sign profile: its LOINC code and the UCUM codes it allows (R4 observation-vitalsigns
# and the US Core 6.1.0 vital-sign profiles).
VITALS = {
    "bp": ("85354-9", {"mm[Hg]"}, "us-core-blood-pressure"),
    "bodyweight": ("29463-7", {"kg", "g", "[lb_av]"}, "us-core-body-weight"),
    "bodyheight": ("8302-2", {"cm", "[in_i]"}, "us-core-body-height"),
    "bmi": ("39156-5", {"kg/m2"}, "us-core-bmi"),
    "heartrate": ("8867-4", {"/min"}, "us-core-heart-rate"),
    "oxygensat": ("2708-6", {"%"}, "us-core-pulse-oximetry"),
}


def profiles(resource: dict) -> list[str]:
    return resource.get("meta", {}).get("profile", [])


def loinc(concept: dict) -> set[str]:
    return {c["code"] for c in concept.get("coding", []) if c["system"] == LOINC}


def ucum(quantity: dict, units: set[str]) -> None:
    assert quantity["system"] == UCUM and quantity["code"] in units
    assert isinstance(quantity["value"], int | float) and quantity["unit"]


@pytest.fixture
def bundle(world: World) -> dict:
    """The API world's patient A, with a height, a clinic BP and a pulse besides its session vitals."""
    patient, user = world.patient_a, world.users["clinician"]
    patient.gender = AdministrativeGender.FEMALE
    patient.save(update_fields=["gender", "updated_at"])
    at = timezone.now() - dt.timedelta(days=10)  # before the weight, so the weight has a BMI
    record_measurement(patient=patient, kind="height", value=Decimal("168"), recorded_by=user, measured_at=at)
    record_measurement(
        patient=patient, kind="blood_pressure", value=Decimal("128"), diastolic=Decimal("80"), recorded_by=user
    )
    record_measurement(patient=patient, kind="pulse", value=Decimal("72"), recorded_by=user)
    return export(world)


def test_patient_has_gender_and_claims_us_core_patient_with_its_required_elements(bundle: dict) -> None:
    (patient,) = resources(bundle, "Patient")
    assert patient["gender"] == "female"
    assert profiles(patient) == [US_CORE.format("us-core-patient")]
    # us-core-patient 6.1.0: identifier 1..* (system and value), name 1..* (us-core-6: family or
    # given), gender 1..1 from AdministrativeGender.
    assert all(i["system"] and i["value"] for i in patient["identifier"]) and patient["identifier"]
    assert all(n.get("family") or n.get("given") for n in patient["name"]) and patient["name"]
    assert patient["gender"] in {"male", "female", "other", "unknown"}


def test_a_patient_without_a_recorded_gender_is_exported_as_unknown(world: World) -> None:
    (patient,) = resources(export(world), "Patient")
    assert patient["gender"] == "unknown"  # the model's default: still a valid, conformant value


# US Core 6.1.0 medication[x] binding (VSAC 2.16.840.1.113762.1.4.1010.4): RxNorm of these term types.
US_CORE_MEDICATION_TTYS = {"SCD", "SBD", "GPCK", "BPCK", "SCDG", "SBDG", "SCDF", "SBDF"}


def test_medication_requests_claim_us_core_only_with_a_clinical_drug_rxnorm_coding(bundle: dict, world: World) -> None:
    requests = {r["id"]: r for r in resources(bundle, "MedicationRequest")}
    tty = {row.code: row.tty for row in fhir_codes.RXNORM.values()}
    for request in requests.values():
        rxnorm = [c for c in request["medicationCodeableConcept"].get("coding", []) if c["system"] == fhir.RXNORM]
        qualifies = any(tty.get(c["code"]) in US_CORE_MEDICATION_TTYS for c in rxnorm)
        assert (US_CORE.format("us-core-medicationrequest") in profiles(request)) == qualifies
        if qualifies:
            # us-core-medicationrequest 6.1.0: status, intent, medication[x], subject 1..1;
            # us-core-21: requester when intent is "order"; authoredOn must-support.
            assert request["status"] and request["intent"] == "order"
            assert request["subject"]["reference"] and request["requester"]["reference"]
            assert request["authoredOn"]
    esketamine = requests[f"rx-{world.esketamine.pk}"]
    assert {"system": fhir.RXNORM, "code": "2201623", "display": "esketamine Nasal Spray"} in esketamine[
        "medicationCodeableConcept"
    ]["coding"]
    sertraline = requests[f"rx-{world.rx.pk}"]
    assert {"system": fhir.RXNORM, "code": "36437", "display": "sertraline"} in sertraline["medicationCodeableConcept"][
        "coding"
    ]
    # Esketamine's SCDF qualifies; sertraline's ingredient (IN) code is exported but claims nothing.
    assert US_CORE.format("us-core-medicationrequest") in profiles(esketamine)
    assert US_CORE.format("us-core-medicationrequest") not in profiles(sertraline)


def test_esketamine_rxnorm_coding_is_in_the_session_administration_too(bundle: dict, world: World) -> None:
    given = {r["id"]: r for r in resources(bundle, "MedicationAdministration")}[f"session-{world.session.pk}"]
    assert [c["code"] for c in given["medicationCodeableConcept"]["coding"] if c["system"] == fhir.RXNORM] == [
        "2201623"
    ]


def test_phq9_total_claims_us_core_screening_assessment_with_its_required_elements(bundle: dict) -> None:
    scores = [o for o in resources(bundle, "Observation") if loinc(o["code"]) & {"44261-6", "70274-6"}]
    assert scores
    for score in scores:
        assert profiles(score) == [US_CORE.format("us-core-observation-screening-assessment")]
        # 6.1.0: status, category 1..* with the survey slice 1..1, code, subject 1..1, a value.
        assert score["status"] in {"final", "entered-in-error"}
        assert any(
            c["system"] == CATEGORY and c["code"] == "survey" for cat in score["category"] for c in cat["coding"]
        )
        assert score["subject"]["reference"] and isinstance(score["valueInteger"], int)


def test_every_vital_sign_claims_r4_and_us_core_profiles_and_meets_them(bundle: dict) -> None:
    claimed: set[str] = set()
    for observation in resources(bundle, "Observation"):
        vital = any(c["code"] == "vital-signs" for cat in observation["category"] for c in cat["coding"])
        if not vital:
            assert not any("StructureDefinition/us-core-" in p and "screening" not in p for p in profiles(observation))
            continue
        (name,) = [n for n, (code, _, _) in VITALS.items() if code in loinc(observation["code"])]
        _, units, us_core = VITALS[name]
        assert profiles(observation) == [R4_VITALS.format(name), US_CORE.format(us_core)]
        claimed.add(name)
        # vitalsigns: category vital-signs, LOINC code, subject, effective[x], value with UCUM.
        assert observation["subject"]["reference"]
        assert "effectiveDateTime" in observation or "effectivePeriod" in observation
        if name == "bp":
            parts = {c["code"]["coding"][0]["code"]: c for c in observation["component"]}
            assert set(parts) == {"8480-6", "8462-4"}
            for part in parts.values():
                ucum(part["valueQuantity"], units)
        else:
            ucum(observation["valueQuantity"], units)
        if name == "oxygensat":
            assert {"2708-6", "59408-5"} <= loinc(observation["code"])  # both US Core pulse-ox slices
    # Session BP and clinic BP, weight, height, BMI (weight + height), pulse.
    assert claimed == {"bp", "bodyweight", "bodyheight", "bmi", "heartrate"}


def test_spo2_claims_pulse_oximetry(world: World) -> None:
    session = world.session
    session.spo2_lowest = 95
    session.save(update_fields=["spo2_lowest"])
    (spo2,) = [o for o in resources(export(world), "Observation") if o["id"] == f"spo2-{session.pk}"]
    assert profiles(spo2) == [R4_VITALS.format("oxygensat"), US_CORE.format("us-core-pulse-oximetry")]
    assert {"2708-6", "59408-5"} <= loinc(spo2["code"]) and spo2["valueQuantity"]["code"] == "%"


def test_a_vital_sign_missing_its_ucum_value_claims_nothing() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "29463-7"}]},
        "subject": {"reference": "urn:uuid:x"},
        "effectiveDateTime": "2026-12-07T09:00:00+00:00",
        "valueQuantity": {"value": 70, "unit": "kg"},  # no UCUM system/code
    }
    assert fhir.profiles_for(observation) == []
    observation["valueQuantity"].update(system=UCUM, code="kg")
    assert fhir.profiles_for(observation) == [R4_VITALS.format("bodyweight"), US_CORE.format("us-core-body-weight")]
    del observation["effectiveDateTime"]
    assert fhir.profiles_for(observation) == []


# --- RxNorm ---------------------------------------------------------------------------------------


def test_every_catalogue_drug_has_a_verified_code_with_a_source_or_an_unverified_marker() -> None:
    names = set(Drug.objects.values_list("name", flat=True))
    assert names and names <= set(fhir_codes.RXNORM)
    for name in names:
        row = fhir_codes.RXNORM[name]
        assert row.code.isdigit() and row.tty in {"IN", "SCDF"}
        if row.verified:
            assert row.source.startswith("https://")
            assert fhir_codes.rxnorm_coding(name) == {"system": fhir.RXNORM, "code": row.code, "display": row.name}
        else:
            assert "[W]" in row.source and fhir_codes.rxnorm_coding(name, row.code) is None


def test_verified_ingredient_codes_agree_with_the_seeded_catalogue() -> None:
    for name, row in fhir_codes.RXNORM.items():
        if row.verified and row.tty == "IN":
            assert drug(name).rxnorm_code == row.code, name


def test_esketamine_is_verified_and_an_unverified_drug_is_exported_without_rxnorm(world: World) -> None:
    assert fhir_codes.RXNORM["esketamine"].verified
    assert fhir_codes.rxnorm_coding("lorazepam", "6470") is None
    # A drug a clinic added itself keeps the code its admin entered.
    assert fhir_codes.rxnorm_coding("clinic-added", "123456") == {
        "system": fhir.RXNORM,
        "code": "123456",
        "display": "clinic-added",
    }
    assert fhir_codes.rxnorm_coding("clinic-added") is None


def test_the_table_is_read_case_insensitively_like_drug_is_esketamine() -> None:
    assert fhir_codes.rxnorm_coding("Esketamine") == fhir_codes.rxnorm_coding("esketamine")
    # Not the seeded §6 code an admin typed against a capitalised name: the table wins, unverified stays out.
    assert fhir_codes.rxnorm_coding("Lorazepam", "6470") is None


def test_only_clinical_drug_term_types_are_in_us_core_medication_codes() -> None:
    assert fhir_codes.in_us_core_medication_codes("2201623")  # esketamine Nasal Spray, SCDF
    assert not fhir_codes.in_us_core_medication_codes("36437")  # sertraline, IN
    assert not fhir_codes.in_us_core_medication_codes("123456")  # unknown term type: no claim
