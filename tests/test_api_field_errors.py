"""Field errors a patient can act on: a questionnaire's refusal names the question by its number
counting from 1 with its text, as the portal does; a clinic-only dose is refused on the
``prescription`` field and names the outside-clinic report endpoint, which then accepts it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.test_api_world import World, client_for, world_fixture  # noqa: F401
from tracker.models import Assessment, DoseEvent

pytestmark = pytest.mark.django_db

ITEM_9 = "Thoughts that you would be better off dead, or of hurting yourself in some way"


def post_phq9(world: World, answers: list) -> dict:
    response = client_for(world, "patient_a").post(
        "/api/assessments/",
        {"patient": world.patient_a.pk, "instrument": "phq9", "answers": answers},
        format="json",
    )
    assert response.status_code == 400, response.json()
    return response.json()


@pytest.mark.parametrize("answers", [[1] * 8, [1] * 8 + [None]], ids=["item-9-left-out", "item-9-null"])
def test_a_phq9_without_item_9_names_question_9_in_the_portals_words(world: World, answers: list) -> None:
    before = Assessment.objects.count()
    errors = post_phq9(world, answers)
    assert errors == {"answers": [f"Please answer question 9 of 9: \u201c{ITEM_9}\u201d."]}
    assert Assessment.objects.count() == before


def test_a_null_in_the_middle_is_named_by_its_number_from_1(world: World) -> None:
    errors = post_phq9(world, [0, None, 0, 0, 0, 0, 0, 0, 0])
    assert errors == {"answers": ["Please answer question 2 of 9: \u201cFeeling down, depressed, or hopeless\u201d."]}
    assert "1" not in errors and 1 not in errors


def test_a_non_number_is_named_by_its_question_and_the_allowed_answers(world: World) -> None:
    errors = post_phq9(world, [0, 0, "often", 0, 0, 0, 0, 0, 0])
    (message,) = errors["answers"]
    assert message.startswith("Please answer question 3 of 9 with a whole number from 0 to 3")


def test_an_out_of_range_answer_names_its_question(world: World) -> None:
    errors = post_phq9(world, [0] * 8 + [7])
    assert errors == {"answers": ["PHQ-9 question 9 must be between 0 and 3; 7 is out of range."]}


def test_a_gad7_short_by_two_asks_for_question_6(world: World) -> None:
    response = client_for(world, "patient_a").post(
        "/api/assessments/", {"patient": world.patient_a.pk, "instrument": "gad7", "answers": [0] * 5}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["answers"] == [
        "Please answer question 6 of 7: \u201cBecoming easily annoyed or irritable\u201d."
    ]


def test_a_patients_clinic_only_dose_is_refused_on_prescription_naming_the_report(world: World) -> None:
    client = client_for(world, "patient_a")
    taken_at = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    before = DoseEvent.objects.count()
    response = client.post(
        "/api/dose-events/", {"prescription": world.esketamine.pk, "occurred_at": taken_at}, format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == ["prescription"], errors
    (message,) = errors["prescription"]
    assert "only at the clinic" in message and "/api/dose-events/outside-clinic-report/" in message
    assert "'Report taking it outside the clinic'" not in message
    assert DoseEvent.objects.count() == before
    # The way the message names works, with the same prescription and time.
    report = client.post(
        "/api/dose-events/outside-clinic-report/",
        {"prescription": world.esketamine.pk, "occurred_at": taken_at},
        format="json",
    )
    assert report.status_code == 201, report.json()
    assert report.json()["outside_clinic_report"] is True
