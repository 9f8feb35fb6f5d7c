"""Clinician entry from the patient page, through the admin's HTML forms as a nurse uses them.

Scores go through ``submit_assessment`` (source: clinician) and doses through ``record_dose``
(reporter: clinician), so the same scoring, matching and flags apply. Times are typed on the
patient's wall clock (the factory's patients live in Europe/London) and stored in UTC.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests import factories
from tests.dosing import at, daily_course
from tracker.models import Assessment, DoseEvent, Flag, FlagKind, PlannedDose, Severity

pytestmark = pytest.mark.django_db

JUNE = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)  # 13:00 BST in London
NOVEMBER = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)  # after both of 2026's changes in London


@pytest.fixture
def frozen(monkeypatch):
    def freeze(instant: dt.datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: instant)

    freeze(JUNE)
    return freeze


@pytest.fixture
def nurse(clinic):
    return factories.ClinicianFactory(clinic=clinic, role="nurse", title="", user__username="nurse-north")


@pytest.fixture
def as_nurse(client, nurse, frozen):
    client.force_login(nurse.user)
    return client


def score_url(patient, instrument: str) -> str:
    return reverse("admin:tracker_patient_record_score", args=[patient.pk, instrument])


def choice_url(patient) -> str:
    return reverse("admin:tracker_patient_record_score_choice", args=[patient.pk])


def dose_url(patient) -> str:
    return reverse("admin:tracker_patient_record_dose", args=[patient.pk])


def patient_page(patient) -> str:
    return reverse("admin:tracker_patient_change", args=[patient.pk])


def answers(values: list[int], completed_at: str = "2026-06-10T09:00") -> dict[str, str]:
    return {"completed_at": completed_at, **{f"item_{n}": str(v) for n, v in enumerate(values, start=1)}}


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


class TestScores:
    def test_the_patient_page_offers_both_entries_to_a_nurse(self, as_nurse, patient):
        content = as_nurse.get(patient_page(patient)).content.decode()
        assert choice_url(patient) in content
        assert dose_url(patient) in content

    def test_choosing_the_scale_leads_to_its_form(self, as_nurse, patient):
        page = as_nurse.get(choice_url(patient))
        assert page.status_code == 200
        assert "MADRS (clinician-rated" in page.content.decode()
        response = as_nurse.get(choice_url(patient), {"instrument": "madrs"})
        assert response.status_code == 302
        assert response["Location"] == score_url(patient, "madrs")

    def test_the_form_has_every_item_as_a_labelled_radio_group_and_a_local_time(self, as_nurse, patient):
        content = as_nurse.get(score_url(patient, "phq9")).content.decode()
        assert content.count("<fieldset") >= 10  # the form's own, then one per item
        assert "<legend>Item 9. Thoughts that you would be better off dead, or of hurting yourself" in content
        assert "Several days (1)" in content  # the scale's own answer labels
        assert 'type="datetime-local"' in content
        assert 'value="2026-06-10T13:00"' in content  # now, on the patient's clock (BST)
        assert '<label for="id_completed_at">Completed at (Europe/London time):</label>' in content
        assert patient.full_name in content and patient.record_number in content  # the patient card

    def test_a_nurse_records_a_madrs_as_the_clinician(self, as_nurse, nurse, patient):
        response = as_nurse.post(score_url(patient, "madrs"), answers([3, 3, 2, 4, 1, 2, 3, 2, 2, 1]))
        assert response.status_code == 302
        assert response["Location"] == patient_page(patient)
        assessment = Assessment.objects.get()
        assert (assessment.instrument, assessment.total, assessment.band) == ("madrs", 23, "moderate")
        assert (assessment.source, assessment.recorded_by) == (Assessment.Source.CLINICIAN, nurse.user)
        assert assessment.completed_at == at("2026-06-10T08:00")  # 09:00 BST
        assert texts(response) == [
            f"Recorded MADRS for {patient.full_name}, 09:00 BST on 10 Jun 2026: total 23 (moderate)."
        ]
        assert not Flag.objects.exists()

    def test_an_in_clinic_phq9_with_item_9_raises_the_urgent_flag_and_shows_the_guidance(
        self, as_nurse, nurse, patient
    ):
        response = as_nurse.post(score_url(patient, "phq9"), answers([2, 2, 1, 1, 1, 2, 1, 0, 1]), follow=True)
        assessment = Assessment.objects.get()
        assert (assessment.instrument, assessment.total, assessment.source) == ("phq9", 11, "clinician")
        assert assessment.recorded_by == nurse.user
        flag = Flag.objects.get(kind=FlagKind.SCALE_SUICIDALITY)
        assert (flag.patient, flag.severity) == (patient, Severity.URGENT)
        content = response.content.decode()
        assert "Urgent flag raised: PHQ-9 item 9" in content
        assert "Samaritans on 116 123" in content  # the crisis guidance (the clinic wrote none of its own)
        assert f'href="{reverse("admin:index")}?patient={patient.pk}"' in content

    def test_an_in_clinic_gad7(self, as_nurse, patient):
        response = as_nurse.post(score_url(patient, "gad7"), answers([1, 1, 2, 1, 0, 1, 1]))
        assert response.status_code == 302
        assert Assessment.objects.get().band == "mild"

    def test_a_missing_item_is_refused_by_name(self, as_nurse, patient):
        data = answers([1, 1, 1, 1, 1, 1, 1, 1, 0])
        del data["item_9"]
        response = as_nurse.post(score_url(patient, "phq9"), data)
        assert response.status_code == 200
        assert response.context["form"].errors["item_9"] == [
            "Item 9 (thoughts that you would be better off dead…) needs an answer."
        ]
        assert "Item 9 (thoughts that you would be better off dead…) needs an answer." in response.content.decode()
        assert not Assessment.objects.exists()

    def test_an_answer_out_of_range_is_refused_by_name(self, as_nurse, patient):
        response = as_nurse.post(score_url(patient, "phq9"), answers([1, 1, 1, 1, 1, 1, 1, 1, 4]))
        assert "item_9" in response.context["form"].errors
        assert not Assessment.objects.exists()

    def test_a_time_in_the_future_is_refused_with_the_reason(self, as_nurse, patient):
        response = as_nurse.post(score_url(patient, "madrs"), answers([0] * 10, completed_at="2026-06-10T15:00"))
        assert response.context["form"].errors["completed_at"] == [
            "That is in the future: it is now 13:00 BST on 10 Jun 2026 in Europe/London."
        ]
        assert not Assessment.objects.exists()

    def test_an_unknown_scale_goes_back_to_the_choice(self, as_nurse, patient):
        response = as_nurse.get(score_url(patient, "cadss"))
        assert response.status_code == 302 and response["Location"] == choice_url(patient)


class TestDaylightSaving:
    """Europe/London, 2026: 29 March 01:00 GMT -> 02:00 BST; 25 October 02:00 BST -> 01:00 GMT."""

    @pytest.fixture(autouse=True)
    def winter(self, frozen):
        frozen(NOVEMBER)  # before logging in: the session's expiry is reckoned from this clock

    def test_a_time_the_clocks_skipped_is_refused_and_explained(self, as_nurse, patient):
        response = as_nurse.post(score_url(patient, "madrs"), answers([1] * 10, completed_at="2026-03-29T01:30"))
        assert response.status_code == 200
        (error,) = response.context["form"].errors["completed_at"]
        assert error.startswith("01:30 did not happen on 29 March 2026 in Europe/London")
        assert "the clocks went forward an hour" in error
        assert "meant 02:30 BST on 29 Mar 2026" in error  # what an unchanged clock reading 01:30 meant
        assert not Assessment.objects.exists()

    def test_just_after_spring_forward_is_summer_time(self, as_nurse, patient):
        as_nurse.post(score_url(patient, "madrs"), answers([1] * 10, completed_at="2026-03-29T02:30"))
        assert Assessment.objects.get().completed_at == at("2026-03-29T01:30")

    def test_a_time_that_happened_twice_is_stored_as_the_first_and_said_so(self, as_nurse, patient):
        response = as_nurse.post(score_url(patient, "madrs"), answers([1] * 10, completed_at="2026-10-25T01:30"))
        assert response.status_code == 302
        # fold=0: the first 01:30, still on BST (UTC+1); the second would have been 01:30 UTC.
        assert Assessment.objects.get().completed_at == at("2026-10-25T00:30")
        (message,) = texts(response)
        assert "01:30 BST on 25 Oct 2026" in message
        assert "01:30 happened twice that night in Europe/London" in message
        assert "recorded as the first, 01:30 BST (00:30 UTC)" in message

    def test_the_form_shows_now_on_the_winter_clock(self, as_nurse, patient):
        content = as_nurse.get(score_url(patient, "madrs")).content.decode()
        assert 'value="2026-11-01T12:00"' in content  # GMT = UTC in winter
        assert "it is now 12:00 GMT on 1 Nov 2026" in content


class TestDoses:
    def test_a_dose_reported_by_phone_matches_its_planned_dose(self, as_nurse, nurse, clinician, patient):
        rx = daily_course(patient, clinician)  # sertraline 50 mg at 08:00 London time from 1 June
        planned = PlannedDose.objects.get(prescription=rx, due_at=at("2026-06-02T07:00"))
        page = as_nurse.get(dose_url(patient)).content.decode()
        assert "Sertraline 50 mg" in page and "Reported by phone" in page
        response = as_nurse.post(
            dose_url(patient),
            {
                "prescription": rx.pk,
                "outcome": "taken",
                "occurred_at": "2026-06-02T08:20",
                "location": "home",
                "note": "Phoned in by the patient",
            },
        )
        assert response.status_code == 302
        assert response["Location"] == patient_page(patient)
        event = DoseEvent.objects.get()
        assert event.planned_dose == planned
        assert event.occurred_at == at("2026-06-02T07:20")
        assert (event.timing, event.location) == (DoseEvent.Timing.ON_TIME, DoseEvent.Location.HOME)
        assert (event.reporter, event.recorded_by) == (DoseEvent.Reporter.CLINICIAN, nurse.user)
        planned.refresh_from_db()
        assert planned.status == PlannedDose.Status.TAKEN
        (message,) = texts(response)
        assert "reported by phone, 08:20 BST on 2 Jun 2026" in message
        assert "the dose planned for 08:00 BST on 2 Jun 2026, on time" in message

    def test_a_skipped_dose_needs_its_reason(self, as_nurse, clinician, patient):
        rx = daily_course(patient, clinician)
        data = {"prescription": rx.pk, "outcome": "skipped", "occurred_at": "2026-06-02T08:00", "location": "clinic"}
        response = as_nurse.post(dose_url(patient), data)
        assert response.context["form"].errors["skip_reason"] == ["Say why the dose was skipped."]
        response = as_nurse.post(dose_url(patient), {**data, "skip_reason": "Nauseous"})
        assert response.status_code == 302
        event = DoseEvent.objects.get()
        assert (event.outcome, event.skip_reason, event.location) == ("skipped", "Nauseous", "clinic")

    def test_an_esketamine_dose_is_refused_with_where_to_go(self, as_nurse, clinician, patient):
        rx = daily_course(
            patient, clinician, name="esketamine", dose="56", times=("10:00",), kind="weekdays", weekdays=(1, 4)
        )
        response = as_nurse.post(
            dose_url(patient),
            {"prescription": rx.pk, "outcome": "taken", "occurred_at": "2026-06-04T10:00", "location": "clinic"},
        )
        assert response.status_code == 200
        (error,) = response.context["form"].errors["prescription"]
        assert "record it as an in-clinic session (In-clinic sessions in the admin)" in error
        sessions = reverse("admin:tracker_inclinicsession_add") + f"?prescription={rx.pk}"
        assert f'href="{sessions}"' in response.content.decode()
        assert not DoseEvent.objects.exists()

    def test_only_the_patients_active_prescriptions_are_offered(self, as_nurse, clinician, patient, other_patient):
        own = daily_course(patient, clinician)
        other = daily_course(other_patient, factories.ClinicianFactory(clinic=other_patient.clinic))
        field = as_nurse.get(dose_url(patient)).context["form"].fields["prescription"]
        assert list(field.queryset) == [own]
        response = as_nurse.post(
            dose_url(patient),
            {"prescription": other.pk, "outcome": "taken", "occurred_at": "2026-06-02T08:00", "location": "home"},
        )
        assert "prescription" in response.context["form"].errors
        assert not DoseEvent.objects.exists()


class TestAccess:
    def test_a_manager_without_the_permission_gets_the_styled_refusal(self, client, clinic, patient, frozen):
        manager = factories.ClinicianFactory(clinic=clinic, role="manager", user__username="manager-north")
        client.force_login(manager.user)
        page = client.get(patient_page(patient)).content.decode()
        assert choice_url(patient) not in page and dose_url(patient) not in page
        for url, reason in (
            (choice_url(patient), "Only nurses and prescribers can record scores."),
            (score_url(patient, "phq9"), "Only nurses and prescribers can record scores."),
            (dose_url(patient), "Only nurses and prescribers can record doses."),
        ):
            response = client.get(url, HTTP_REFERER="http://testserver" + patient_page(patient))
            assert response.status_code == 403, url
            content = response.content.decode()
            assert reason in content
            assert 'id="site-name"' in content  # the admin's own header
            assert f'<a href="{patient_page(patient)}">Back to the previous page</a>' in content
        response = client.post(score_url(patient, "phq9"), answers([1] * 9))
        assert response.status_code == 403
        assert not Assessment.objects.exists()

    def test_another_clinics_patient_is_not_found(self, as_nurse, other_patient):
        for url in (choice_url(other_patient), score_url(other_patient, "madrs"), dose_url(other_patient)):
            assert as_nurse.get(url).status_code == 404, url
        assert as_nurse.post(score_url(other_patient, "madrs"), answers([1] * 10)).status_code == 404
        assert not Assessment.objects.exists()

    def test_a_prescriber_may_record_too(self, client, clinician, patient, frozen):
        client.force_login(clinician.user)
        response = client.post(score_url(patient, "madrs"), answers([0] * 10))
        assert response.status_code == 302
        assert Assessment.objects.get().recorded_by == clinician.user


def test_the_item_names_are_words():
    from tracker.admin.entries import item_short_text

    assert item_short_text("Suicidal thoughts") == "suicidal thoughts"
    assert item_short_text("Thoughts that you would be better off dead, or of hurting yourself in some way") == (
        "thoughts that you would be better off dead…"
    )
    assert re.fullmatch(r"[a-z].*…", item_short_text("Trouble concentrating on things, such as reading"))
