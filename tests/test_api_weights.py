"""The weight-measurement API: clinicians record, patients read their own; the latest is current."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests import factories
from tests.test_weights import RANGE_MESSAGE, weigh
from tracker.models import WeightMeasurement

pytestmark = pytest.mark.django_db


class TestApi:
    @staticmethod
    def client_for(user):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(user)
        return client

    def test_a_clinician_records_a_weight_and_it_becomes_current(self, patient, clinician):
        response = self.client_for(clinician.user).post(
            "/api/weight-measurements/",
            {"patient": patient.pk, "weight_kg": "73.1", "measured_at": "2026-06-01T10:00:00+01:00", "note": "Clinic"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["weight_kg"], body["measured_at"], body["note"]) == ("73.1", "2026-06-01T09:00:00Z", "Clinic")
        weight = WeightMeasurement.objects.get(pk=body["id"])
        assert weight.recorded_by == clinician.user
        patient.refresh_from_db()
        assert patient.weight_kg == Decimal("73.1")

    def test_an_implausible_weight_is_a_400_naming_the_field(self, patient, clinician):
        response = self.client_for(clinician.user).post(
            "/api/weight-measurements/", {"patient": patient.pk, "weight_kg": "731.0"}, format="json"
        )
        assert response.status_code == 400
        assert response.json() == {"weight_kg": [RANGE_MESSAGE]}
        assert not WeightMeasurement.objects.exists()

    def test_a_patient_reads_only_their_own_weights_and_cannot_add_one(self, clinic, patient, clinician):
        user = factories.UserFactory(username="patient-weights")
        me = factories.PatientFactory(clinic=clinic, record_number="N-ME", user=user)
        mine = weigh(me, "2026-06-01T09:00", "64.0")
        weigh(patient, "2026-06-01T09:00", "90.0")
        client = self.client_for(user)
        assert [r["id"] for r in client.get("/api/weight-measurements/").json()["results"]] == [mine.pk]
        response = client.post("/api/weight-measurements/", {"patient": me.pk, "weight_kg": "60.0"}, format="json")
        assert response.status_code == 403
        assert WeightMeasurement.objects.count() == 2
