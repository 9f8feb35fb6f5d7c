"""The OpenAPI schema is valid and the API keeps to it: schemathesis generates requests from
the live schema (in-process through WSGI) as a clinician with a token, and every response must
be a non-5xx that matches the schema. Examples per operation are bounded to keep CI quick.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from tests.test_api_world import World, world_fixture  # noqa: F401


def _load_schema() -> schemathesis.schemas.BaseSchema:
    """The live schema, generated in-process (``/api/schema/`` itself is for signed-in staff)."""
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance]


def test_schema_validates_against_the_openapi_3_spec() -> None:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(generated)  # raises on an invalid document
    assert generated["openapi"].startswith("3.")
    assert "/api/patients/{id}/fhir/" in generated["paths"]


@pytest.mark.django_db
def test_docs_page_serves_swagger_ui_from_the_sidecar(admin_client) -> None:
    page = admin_client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()


@pytest.fixture
def test_transaction_survives_requests():
    """Keep the test's database connection open across WSGI requests, as Django's test client does.

    The real WSGI handler closes "old" connections at each request's start and end; inside
    the test's transaction that closes the connection itself (seen on PostgreSQL; SQLite's
    in-memory database is never closed, which hides it).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.usefixtures("test_transaction_survives_requests")
@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, world: World) -> None:
    token, _ = Token.objects.get_or_create(user=world.users["clinician"])
    case.call_and_validate(headers={"Authorization": f"Token {token.key}"}, checks=CHECKS)
