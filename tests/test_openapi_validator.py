"""The OpenAPI document passes openapi-spec-validator (a validator this project did not write), and
what it promises holds: optional text fields take the "" they declare as default, and a skipped
dose's blank ``timing`` is inside the documented enum."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from rest_framework.renderers import JSONRenderer

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.models import DoseEvent


@pytest.fixture(scope="module")
def document() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(JSONRenderer().render(generated))  # plain JSON types, as the file CI checks


def test_schema_passes_openapi_spec_validator(document: dict) -> None:
    validate(document)  # raises OpenAPIValidationError on the first error


def test_the_validator_catches_a_default_outside_its_own_limits(document: dict) -> None:
    """Not passing by construction: the defect this project had (default "" with minLength 1) fails."""
    broken = copy.deepcopy(document)
    request = broken["components"]["schemas"]["DoseEventCreateRequest"]["properties"]
    request["note"] = {**request["note"], "minLength": 1}
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_optional_text_defaults_are_allowed_values(document: dict) -> None:
    for name, component in document["components"]["schemas"].items():
        for field, spec in (component.get("properties") or {}).items():
            if spec.get("default") == "":
                assert spec.get("minLength", 0) == 0, f"{name}.{field}"


def blank_allowed(document: dict, spec: dict) -> bool:
    options = spec.get("oneOf", spec.get("allOf", [spec]))
    for option in options:
        target = option
        if "$ref" in option:
            target = document["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        if "" in target.get("enum", []):
            return True
    return False


@pytest.mark.django_db
def test_a_dose_with_blank_optional_texts_is_accepted_and_a_skip_lists_in_the_enum(
    world: World, document: dict
) -> None:
    """What openapi-python-client sends for omitted optional texts ("" as documented) is accepted."""
    client = client_for(world, "patient_a")
    due = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    taken = client.post(
        "/api/dose-events/",
        {"prescription": world.rx.pk, "occurred_at": due, "skip_reason": "", "note": ""},
        format="json",
    )
    assert taken.status_code == 201, taken.json()
    skipped = client.post(
        "/api/dose-events/",
        {"prescription": world.rx.pk, "occurred_at": due, "outcome": "skipped", "skip_reason": "Felt sick", "note": ""},
        format="json",
    )
    assert skipped.status_code == 201, skipped.json()
    assert skipped.json()["timing"] == ""
    assert DoseEvent.objects.get(pk=skipped.json()["id"]).skip_reason == "Felt sick"
    timing = document["components"]["schemas"]["DoseEvent"]["properties"]["timing"]
    assert blank_allowed(document, timing)


def operations(document: dict) -> list[tuple[str, dict]]:
    """(``METHOD path``, operation) for every operation in the document."""
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_has_its_own_description(document: dict) -> None:
    """No empty description, and none shared: a viewset's or mixin's docstring no longer stands in for several."""
    described = operations(document)
    assert len(described) >= 48
    empty = [name for name, operation in described if not operation.get("description", "").strip()]
    assert empty == []
    by_text: dict[str, list[str]] = {}
    for name, operation in described:
        by_text.setdefault(operation["description"], []).append(name)
    shared = {text[:60]: names for text, names in by_text.items() if len(names) > 1}
    assert shared == {}
