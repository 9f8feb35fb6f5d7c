"""The limits and refusals the OpenAPI schema documents are the ones the server gives (issue 19).

Each test reads the number or status from the generated schema, then asks the server: the page
size cap and default, the id range of a path, the date range of a filter, 401 with its
WWW-Authenticate, and 415 for a body that is not JSON, documented exactly where a body is read.
Error bodies are checked against the schema's own error components.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.renderers import JSONRenderer

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.api.serializers import SchedulesOrRegimenSerializer
from tracker.models import Drug


@pytest.fixture(scope="module")
def document() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(JSONRenderer().render(generated))


def parameter(document: dict, path: str, name: str, method: str = "get") -> dict:
    return next(p for p in document["paths"][path][method]["parameters"] if p["name"] == name)


def assert_body_is(document: dict, response, code: str, path: str, method: str) -> None:
    """The response's status is documented on the operation and its body fits the documented schema."""
    documented = document["paths"][path][method]["responses"]
    assert code in documented, f"{method.upper()} {path} does not document {code}"
    name = documented[code]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    jsonschema.validate(response.json(), document["components"]["schemas"][name])


@pytest.mark.django_db
def test_page_size_default_and_cap_are_the_documented_ones(world: World, document: dict) -> None:
    page_size = parameter(document, "/api/drugs/", "page_size")["schema"]
    cap, default = page_size["maximum"], page_size["default"]
    template = Drug.objects.order_by("pk").first()
    extra = []
    for n in range(cap + 5 - Drug.objects.count()):
        row = copy.copy(template)
        row.pk, row.name = None, f"Testdrug {n:03d}"
        extra.append(row)
    Drug.objects.bulk_create(extra)
    client = client_for(world, "clinician")

    assert len(client.get("/api/drugs/").json()["results"]) == default
    assert len(client.get("/api/drugs/", {"page_size": cap}).json()["results"]) == cap
    above = client.get("/api/drugs/", {"page_size": cap + 1}).json()
    assert len(above["results"]) == cap  # served as the cap, as the description says
    assert above["next"] is not None and above["count"] == cap + 5
    assert f"at most {cap}" in parameter(document, "/api/drugs/", "page_size")["description"]


@pytest.mark.django_db
def test_a_page_past_the_last_is_the_documented_404(world: World, document: dict) -> None:
    assert parameter(document, "/api/drugs/", "page")["schema"]["minimum"] == 1
    response = client_for(world, "clinician").get("/api/drugs/", {"page": 999})
    assert response.status_code == 404
    assert_body_is(document, response, "404", "/api/drugs/", "get")


@pytest.mark.django_db
def test_path_ids_outside_the_documented_range_answer_404(world: World, document: dict) -> None:
    schema = parameter(document, "/api/patients/{id}/", "id")["schema"]
    client = client_for(world, "clinician")
    assert client.get(f"/api/patients/{world.patient_a.pk}/").status_code == 200
    for outside in (schema["minimum"] - 1, schema["maximum"] + 1, -5):
        response = client.get(f"/api/patients/{outside}/")
        assert response.status_code == 404, outside
        assert_body_is(document, response, "404", "/api/patients/{id}/", "get")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "name", "inside", "outside"),
    [
        ("/api/prescriptions/", "start_date_after", "1900-01-01", "1899-12-31"),
        ("/api/prescriptions/", "start_date_before", "2200-12-31", "2201-01-01"),
        ("/api/dose-events/", "occurred_at_after", "1900-01-01T00:00:00Z", "1899-12-31T23:00:00Z"),
        ("/api/dose-events/", "occurred_at_before", "2200-12-31T23:00:00Z", "2201-01-01T00:00:00Z"),
    ],
)
def test_date_filters_take_the_documented_range(
    world: World, document: dict, path: str, name: str, inside: str, outside: str
) -> None:
    described = parameter(document, path, name)["description"]
    assert "1900-01-01" in described and "2200-12-31" in described
    client = client_for(world, "clinician")
    assert client.get(path, {name: inside}).status_code == 200
    refused = client.get(path, {name: outside})
    assert refused.status_code == 400
    assert list(refused.json()) == [name.rsplit("_", 1)[0]]  # the filter named, as documented
    assert_body_is(document, refused, "400", path, "get")


@pytest.mark.django_db
def test_no_credentials_is_the_documented_401_with_its_scheme(world: World, document: dict) -> None:
    response = client_for(world, "anonymous").get("/api/drugs/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert_body_is(document, response, "401", "/api/drugs/", "get")
    assert "WWW-Authenticate" in document["paths"]["/api/drugs/"]["get"]["responses"]["401"]["headers"]


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_the_documented_415(world: World, document: dict) -> None:
    client = client_for(world, "patient_a")
    response = client.post("/api/dose-events/", data="prescription=1", content_type="text/plain")
    assert response.status_code == 415
    assert "text/plain" in response.json()["detail"]
    assert_body_is(document, response, "415", "/api/dose-events/", "post")


def test_415_is_documented_exactly_where_a_body_is_read(document: dict) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert ("415" in operation["responses"]) == ("requestBody" in operation), f"{method} {path}"


@pytest.mark.django_db
def test_an_operation_without_a_body_does_not_refuse_a_content_type(world: World, document: dict) -> None:
    """Acknowledge reads no body, so a text/plain one is no 415, and none is documented."""
    path = "/api/flags/{id}/acknowledge/"
    assert "415" not in document["paths"][path]["post"]["responses"]
    response = client_for(world, "clinician").post(
        path.replace("{id}", str(world.flag.pk)), data="please", content_type="text/plain"
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_field_refusals_fit_the_documented_400_body(world: World, document: dict) -> None:
    client = client_for(world, "patient_a")
    missing = client.post("/api/dose-events/", {"prescription": world.rx.pk}, format="json")
    assert missing.status_code == 400 and "occurred_at" in missing.json()
    assert_body_is(document, missing, "400", "/api/dose-events/", "post")
    nested = client.post(
        "/api/assessments/",
        {"patient": world.patient_a.pk, "instrument": "phq9", "answers": [0, 1, 0, 0, 9, 0, 0, 0, 0]},
        format="json",
    )
    assert nested.status_code == 400
    assert_body_is(document, nested, "400", "/api/assessments/", "post")
    unreadable = client.post("/api/dose-events/", data="{", content_type="application/json")
    assert unreadable.status_code == 400 and list(unreadable.json()) == ["detail"]
    assert_body_is(document, unreadable, "400", "/api/dose-events/", "post")


def test_404_is_not_documented_where_nothing_is_looked_up(document: dict) -> None:
    """A POST to a collection looks nothing up by id: no 404 there; every lookup by id documents one."""
    assert "404" not in document["paths"]["/api/dose-events/"]["post"]["responses"]
    assert "404" not in document["paths"]["/api/prescriptions/preview/"]["post"]["responses"]
    for path, item in document["paths"].items():
        if "{id}" in path:
            assert all("404" in operation["responses"] for operation in item.values()), path


def test_a_null_schedule_item_is_a_400_as_the_schema_says(document: dict) -> None:
    """The schema's schedule items are not nullable; ``[null]`` reached the service and was a 500."""
    items = document["components"]["schemas"]["PrescribeRequest"]["properties"]["schedules"]
    assert items.get("nullable") is True and "nullable" not in str(items["items"])
    sent = SchedulesOrRegimenSerializer(data={"schedules": [None]})
    assert not sent.is_valid()
    assert "schedules" in sent.errors


@pytest.mark.django_db
def test_drug_rxnorm_code_is_the_one_the_fhir_export_sends(world: World, document: dict) -> None:
    """One source of truth: the API's rxnorm_code is FHIR's (tracker/fhir_codes.py), blank where FHIR withholds it."""
    client = client_for(world, "clinician")
    by_name = {row["name"]: row for row in client.get("/api/drugs/", {"page_size": 100}).json()["results"]}
    assert Drug.objects.get(name="lorazepam").rxnorm_code == "6470"  # seeded from §6, unverified
    assert by_name["lorazepam"]["rxnorm_code"] == ""
    assert by_name["esketamine"]["rxnorm_code"] == "2201623"  # the table's SCDF, not the seeded column
    assert by_name["sertraline"]["rxnorm_code"] == "36437"
    field = document["components"]["schemas"]["Drug"]["properties"]["rxnorm_code"]
    assert field["type"] == "string" and "blank when none is verified" in field["description"]


def test_dose_event_and_measurement_create_describe_the_key_replay_and_the_unit(document: dict) -> None:
    """The statuses named are the server's (tests/test_api_dose_retry.py: 201 on a replay, 400 on
    client_key for another medicine); the measurement's optional unit and its refusal are named."""
    dose = document["paths"]["/api/dose-events/"]["post"]["description"]
    assert "answers 201 with the event already recorded" in dose
    assert "another medicine" in dose and "(400, on `client_key`)" in dose
    measurement = document["paths"]["/api/measurements/"]["post"]["description"]
    assert "`unit`" in measurement and "a `unit` the kind has not" in measurement
    drugs = document["paths"]["/api/drugs/"]["get"]["description"]
    assert "blank where none is verified" in drugs
