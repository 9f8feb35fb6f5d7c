"""The FHIR endpoint speaks FHIR's HTTP: ``application/fhir+json`` in Accept and Content-Type,
``_format`` as FHIR servers take it, and a 406 with an OperationOutcome for any other format."""

from __future__ import annotations

import pytest

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

FHIR_JSON = "application/fhir+json; fhirVersion=4.0"


def url(world: World, query: str = "") -> str:
    return f"/api/patients/{world.patient_a.pk}/fhir/{query}"


@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/fhir+json; fhirVersion=4.0",
        # HAPI's default Accept: XML first, JSON as well (and the pre-R4 name).
        "application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, "
        "application/json+fhir;q=0.9",
        None,
    ],
)
def test_json_accepts_get_the_bundle_as_fhir_json(world: World, accept: str | None) -> None:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = client_for(world, "clinician").get(url(world), **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == FHIR_JSON
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"


@pytest.mark.parametrize("value", ["json", "application/json", "application/fhir+json", "application/fhir json"])
def test_format_json_wins_over_accept(world: World, value: str) -> None:
    response = client_for(world, "clinician").get(url(world), {"_format": value}, HTTP_ACCEPT="application/fhir+xml")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == FHIR_JSON
    assert response.json()["resourceType"] == "Bundle"


@pytest.mark.parametrize(
    ("accept", "query", "words"),
    [
        ("application/fhir+xml", {}, "Accept: application/fhir+xml"),
        ("application/xml, text/xml", {}, "application/fhir+json"),
        ("application/fhir+json; fhirVersion=5.0", {}, "fhirVersion=5.0"),
        ("application/fhir+json;q=0, application/xml", {}, "Accept:"),
        ("application/fhir+json", {"_format": "xml"}, "_format=xml"),
        ("*/*", {"_format": "ttl"}, "_format=ttl"),
    ],
)
def test_other_formats_get_406_with_an_operation_outcome(world: World, accept: str, query: dict, words: str) -> None:
    response = client_for(world, "clinician").get(url(world), query, HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert response["Content-Type"] == FHIR_JSON
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "not-supported")
    assert words in issue["diagnostics"] and "JSON" in issue["diagnostics"]


def test_other_refusals_of_the_endpoint_are_operation_outcomes(world: World) -> None:
    anonymous = client_for(world, "anonymous").get(url(world), HTTP_ACCEPT="application/fhir+json")
    assert anonymous.status_code == 401
    assert anonymous.json()["issue"][0]["code"] == "login"
    patient = client_for(world, "patient_a").get(url(world), HTTP_ACCEPT="application/fhir+json")
    assert patient.status_code == 403
    assert patient.json()["issue"][0]["code"] == "forbidden"
    missing = client_for(world, "clinician").get("/api/patients/999999/fhir/", HTTP_ACCEPT="application/fhir+json")
    assert missing.status_code == 404 and missing["Content-Type"] == FHIR_JSON
    assert missing.json() == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "not-found", "diagnostics": "No Patient matches the given query."}],
    }
