"""Who may read the API's schema and docs: signed-in staff, or anyone with TRACKER_PUBLIC_API_DOCS on (issue 14)."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests import factories

pytestmark = pytest.mark.django_db


def test_off_by_default_the_schema_and_docs_are_for_staff(client, settings, patient, clinician):
    patient_user = factories.UserFactory(username="docs-patient")
    patient.user = patient_user
    patient.save()
    assert settings.TRACKER_PUBLIC_API_DOCS is False
    assert client.get("/api/schema/").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302 and docs["Location"].startswith("/admin/login/")
    patient_token = Token.objects.create(user=patient_user)
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {patient_token.key}").status_code == 403
    client.force_login(clinician.user)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_on_anyone_reads_the_schema_and_docs_but_not_the_api(client, settings):
    settings.TRACKER_PUBLIC_API_DOCS = True
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert "/api/prescriptions/" in schema.content.decode()
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "swagger" in docs.content.decode().lower()
    assert client.get("/api/docs/?script=").status_code == 200
    # The docs are public; the data is not.
    assert client.get("/api/patients/").status_code == 401
