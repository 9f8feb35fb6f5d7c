"""PHQ-9, GAD-7 and the weekly side-effect check-in: one-page radio forms, errors by question, crisis guidance."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.test_portal_support import course, give_login, signed_in
from tracker.models import Assessment, Flag, FlagKind, SideEffectReport
from tracker.portal import selectors
from tracker.services.assessments import submit_assessment
from tracker.side_effect_catalogue import EFFECTS, choices_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, patient):
    return signed_in(client, give_login(patient, "pat"))


def main_of(html: str) -> str:
    """The page's <main>: the questionnaire itself, without the site-wide offline script in <head>."""
    return html.split('<main id="main"', 1)[1].split("</main>", 1)[0]


def answers(values: list[int]) -> dict[str, int]:
    return {f"q{n}": value for n, value in enumerate(values, start=1)}


def test_phq9_is_one_page_of_labelled_radio_groups_that_needs_no_script(portal):
    html = portal.get(reverse("portal:questionnaire", args=["phq9"])).content.decode()
    assert html.count('<fieldset class="question') == 9
    assert html.count('type="radio"') == 9 * 4
    assert "<legend>9. Thoughts that you would be better off dead" in html
    assert '<label class="choice" for="id_q1_0"><input type="radio" name="q1" value="0"' in html
    assert "<script" not in main_of(html) and "style=" not in main_of(html)


def test_a_missing_answer_is_named_by_its_question(portal):
    response = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers([1] * 8))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please answer question 9 of 9: “Thoughts that you would be better off dead" in html
    assert '<a href="#id_q9">' in html  # the summary links to the question
    assert not Assessment.objects.exists()


def test_phq9_without_thoughts_of_self_harm_saves_and_shows_the_score_only(portal, patient):
    response = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers([1] * 8 + [0]), follow=True)
    html = response.content.decode()
    assessment = Assessment.objects.get()
    assert (assessment.instrument, assessment.total, assessment.source) == ("phq9", 8, "patient")
    assert "Your score is 8 out of 27" in html
    assert "Please read this now" not in html
    assert not Flag.objects.exists()


def test_phq9_item9_above_zero_shows_the_default_crisis_guidance_at_once(portal, patient):
    response = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers([2] * 8 + [1]))
    assessment = Assessment.objects.get()
    assert response["Location"] == reverse("portal:result", args=[assessment.pk])
    html = portal.get(response["Location"]).content.decode()
    assert '<section class="crisis" role="alert"' in html
    assert html.index("Please read this now") < html.index("Your answers have been saved")  # guidance first
    assert "call your local emergency number" in html and 'Samaritans on <a href="tel:116123">116 123</a>' in html
    assert "Your care team has been told about your answer." in html
    assert "within" not in html.lower()  # never a promised response time
    assert Flag.objects.get(kind=FlagKind.SCALE_SUICIDALITY).patient == patient


def test_the_clinics_own_crisis_text_replaces_the_default(portal, patient):
    patient.clinic.crisis_guidance = "Call the Northside crisis team on 0800 000 111, day or night.\nOr dial 999."
    patient.clinic.phone = "020 7946 0000"
    patient.clinic.save()
    response = portal.post(reverse("portal:questionnaire", args=["phq9"]), answers([0] * 8 + [3]), follow=True)
    html = response.content.decode()
    assert '<p>Call the Northside crisis team on <a href="tel:0800000111">0800 000 111</a>, day or night.</p>' in html
    assert '<p>Or dial <a href="tel:999">999</a>.</p>' in html
    assert "Samaritans" not in html
    assert 'href="tel:02079460000"' in html


def test_gad7_is_seven_questions(portal):
    assert portal.get(reverse("portal:questionnaire", args=["gad7"])).content.decode().count("<fieldset") == 7
    response = portal.post(reverse("portal:questionnaire", args=["gad7"]), answers([3] * 7), follow=True)
    assert "Your score is 21 out of 21" in response.content.decode()


def test_out_of_range_answers_are_refused(portal):
    response = portal.post(reverse("portal:questionnaire", args=["gad7"]), answers([4] * 7))
    assert response.status_code == 400
    assert "Please check your answers" in response.content.decode()
    assert not Assessment.objects.exists()


def test_checkin_lists_the_effects_of_the_patients_drug_classes_first(portal, patient, clinician):
    course(patient, clinician, name="quetiapine", dose="150", times=("21:00",))
    html = portal.get(reverse("portal:checkin")).content.decode()
    (_, first_sga_effect) = choices_for({"sga"})[0]
    assert html.index(first_sga_effect) < html.index("Headache")  # antipsychotic effects before the others
    assert html.count('<fieldset class="question') == 3 + len(EFFECTS) + 1  # FIBSER, each effect, something else


def test_checkin_saves_fibser_and_the_effects_present(portal, patient):
    data = {
        **answers([4, 3, 2]),
        "effect_nausea": "moderate",
        "effect_headache": "mild",
        "other_description": "Vivid dreams",
        "other_severity": "mild",
    }
    response = portal.post(reverse("portal:checkin"), data, follow=True)
    fibser = Assessment.objects.get(instrument="fibser")
    assert fibser.answers == [4, 3, 2]
    reports = {r.effect: (r.severity, r.description) for r in SideEffectReport.objects.filter(checkin=fibser)}
    assert reports == {
        "nausea": ("moderate", ""),
        "headache": ("mild", ""),
        "other": ("mild", "Vivid dreams"),
    }
    html = response.content.decode()
    assert "Feeling sick (nausea) or being sick – Moderate" in html and "Vivid dreams – Mild" in html


def test_checkin_errors_name_the_question_and_the_missing_detail(portal):
    response = portal.post(reverse("portal:checkin"), {**answers([1, 1]), "other_description": "Itchy skin"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Please answer question 3 of 3: “How much did the side effects get in the way of your day?”" in html
    assert "Say how strong the side effect you described is." in html
    assert not Assessment.objects.exists()


def test_questionnaires_are_due_weekly_from_the_last_one(portal, patient):
    submit_assessment(patient=patient, instrument="phq9", answers=[0] * 9, source="patient")
    due = {d.instrument: d for d in selectors.questionnaires_due(patient, timezone.now())}
    assert not due["phq9"].is_due and due["gad7"].is_due and due["fibser"].is_due
    html = portal.get(reverse("portal:questionnaires")).content.decode()
    assert "Next due on" in html and html.count("Due now") == 2
    today = portal.get(reverse("portal:today")).content.decode()
    assert "Anxiety questionnaire (GAD-7)" in today and "Mood questionnaire (PHQ-9)" not in today


# --- ASEX and PCL-5, offered by course (issue 15) --------------------------------------------


def _set_indication(rx, text: str) -> None:
    # The free-text indication a clinician typed; set directly, as the admin form stores it.
    type(rx).objects.filter(pk=rx.pk).update(indication=text)


def test_a_patient_on_an_ssri_gets_asex_when_due_submits_it_and_a_positive_screen_flags(portal, patient, clinician):
    from tracker.rules import symptoms

    course(patient, clinician, name="sertraline", days_ago=10)
    listing = portal.get(reverse("portal:questionnaires")).content.decode()
    assert "Sex life and medicines (ASEX)" in listing
    assert reverse("portal:questionnaire", args=["asex"]) in listing

    page = portal.get(reverse("portal:questionnaire", args=["asex"])).content.decode()
    assert page.count('<fieldset class="question') == 5  # one radio group per question, no script
    assert page.count('type="radio"') == 5 * 6
    assert "<legend>1. How strong is your sex drive?</legend>" in page
    assert "<span>6: No sex drive</span>" in page and "over the past week, including today" in page
    assert "<script" not in main_of(page)

    response = portal.post(reverse("portal:questionnaire", args=["asex"]), answers([2, 2, 5, 2, 2]), follow=True)
    assessment = Assessment.objects.get(instrument="asex")
    assert (assessment.total, assessment.band, assessment.source) == (13, "dysfunction", "patient")
    assert "Your score is 13 out of 30" in response.content.decode()

    symptoms.sweep(now=timezone.now())
    flag = Flag.objects.get(kind=FlagKind.SE_SEXUAL_DYSFUNCTION)
    assert flag.patient_id == patient.pk and flag.subject_id == assessment.pk

    # Done today: next due after the clinic's 4 weeks, not before.
    due = {d.instrument: d for d in selectors.questionnaires_due(patient, timezone.now())}
    assert not due["asex"].is_due
    assert (due["asex"].due_date - due["asex"].last_date).days == 28


def test_a_negative_asex_screen_raises_no_flag(portal, patient, clinician):
    from tracker.rules import symptoms

    course(patient, clinician, name="sertraline")
    portal.post(reverse("portal:questionnaire", args=["asex"]), answers([3, 3, 4, 4, 3]))
    assert Assessment.objects.get(instrument="asex").band == "no dysfunction"
    symptoms.sweep(now=timezone.now())
    assert not Flag.objects.filter(kind=FlagKind.SE_SEXUAL_DYSFUNCTION).exists()


def test_asex_refuses_a_missing_answer_by_its_question(portal, patient, clinician):
    course(patient, clinician, name="sertraline")
    response = portal.post(reverse("portal:questionnaire", args=["asex"]), answers([1, 1, 1, 1]))
    assert response.status_code == 400
    assert "Please answer question 5 of 5: “Are your orgasms satisfying?”" in response.content.decode()
    response = portal.post(reverse("portal:questionnaire", args=["asex"]), answers([1, 1, 1, 1, 7]))
    assert response.status_code == 400 and not Assessment.objects.exists()


def test_asex_is_not_offered_without_an_ssri_or_snri(portal, patient, clinician):
    course(patient, clinician, name="lorazepam", dose="1")
    assert "ASEX" not in portal.get(reverse("portal:questionnaires")).content.decode()
    assert portal.get(reverse("portal:questionnaire", args=["asex"])).status_code == 404
    assert portal.post(reverse("portal:questionnaire", args=["asex"]), answers([5] * 5)).status_code == 404
    assert not Assessment.objects.exists()


def test_a_patient_treated_for_ptsd_gets_pcl5_and_sees_the_score(portal, patient, clinician):
    rx = course(patient, clinician, name="sertraline")
    _set_indication(rx, "Chronic post-traumatic stress disorder")
    listing = portal.get(reverse("portal:questionnaires")).content.decode()
    assert "Stress after a very stressful experience (PCL-5)" in listing

    page = portal.get(reverse("portal:questionnaire", args=["pcl5"])).content.decode()
    assert page.count('<fieldset class="question') == 20
    assert page.count('type="radio"') == 20 * 5
    assert "<legend>1. Repeated, disturbing, and unwanted memories of the stressful experience?</legend>" in page
    assert "in the past month" in page and "<script" not in main_of(page)

    response = portal.post(reverse("portal:questionnaire", args=["pcl5"]), answers([2] * 16 + [1] + [0] * 3))
    assessment = Assessment.objects.get(instrument="pcl5")
    assert (assessment.total, assessment.band) == (33, "probable PTSD")
    assert "Your score is 33 out of 80" in portal.get(response["Location"]).content.decode()


@pytest.mark.parametrize("indication", ["PTSD", "ptsd after assault", "Posttraumatic stress disorder"])
def test_pcl5_follows_the_indication_words_in_any_case(portal, patient, clinician, indication):
    _set_indication(course(patient, clinician, name="sertraline"), indication)
    assert portal.get(reverse("portal:questionnaire", args=["pcl5"])).status_code == 200


def test_patients_not_treated_for_ptsd_do_not_get_pcl5(portal, patient, clinician):
    course(patient, clinician, name="sertraline")  # indication: major depressive disorder
    assert "PCL-5" not in portal.get(reverse("portal:questionnaires")).content.decode()
    assert portal.get(reverse("portal:questionnaire", args=["pcl5"])).status_code == 404
    assert portal.post(reverse("portal:questionnaire", args=["pcl5"]), answers([4] * 20)).status_code == 404
    assert not Assessment.objects.exists()


def test_a_stopped_ptsd_course_no_longer_offers_pcl5(portal, patient, clinician):
    rx = course(patient, clinician, name="sertraline", days_ago=30)
    _set_indication(rx, "PTSD")
    type(rx).objects.filter(pk=rx.pk).update(end_date=timezone.localdate() - dt.timedelta(days=1))
    assert portal.get(reverse("portal:questionnaire", args=["pcl5"])).status_code == 404
