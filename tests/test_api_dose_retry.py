"""A client that retries a dose after a lost answer does not record it twice (issue 19).

``POST /api/dose-events/`` takes the portal's idempotency key (``client_key``): sent again,
it answers with the dose already recorded.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.models import DoseEvent


@pytest.mark.django_db
def test_a_retried_dose_with_its_key_is_recorded_once(world: World) -> None:
    client = client_for(world, "patient_a")
    key = str(uuid.uuid4())
    body = {
        "prescription": world.rx.pk,
        "occurred_at": (timezone.now() - dt.timedelta(minutes=3)).isoformat(),
        "outcome": "skipped",
        "skip_reason": "Felt sick",
        "client_key": key,
    }
    first = client.post("/api/dose-events/", body, format="json")
    again = client.post("/api/dose-events/", body, format="json")
    assert first.status_code == again.status_code == 201, again.json()
    assert first.json()["id"] == again.json()["id"]
    assert DoseEvent.objects.filter(client_key=key).count() == 1
    without_key = {name: value for name, value in body.items() if name != "client_key"}
    assert client.post("/api/dose-events/", without_key, format="json").json()["id"] != first.json()["id"]


@pytest.mark.django_db
def test_a_key_reused_for_another_medicine_is_refused_on_the_key(world: World) -> None:
    client = client_for(world, "clinician")
    key = str(uuid.uuid4())
    at = (timezone.now() - dt.timedelta(minutes=3)).isoformat()
    sent = {"prescription": world.rx.pk, "occurred_at": at, "client_key": key}
    assert client.post("/api/dose-events/", sent, format="json").status_code == 201
    other = {**sent, "prescription": world.esketamine.pk, "location": "clinic"}
    refused = client.post("/api/dose-events/", other, format="json")
    assert refused.status_code == 400
    assert list(refused.json()) == ["client_key"]
