"""The patient portal in real headless Chromium on a phone-sized screen.

Each test signs a patient in through the real login form and uses the pages as a patient
would: one tap for a dose, a PHQ-9 with radio buttons, the progress chart. Screenshots go
to pytest-playwright's output folder (``test-results/`` by default, or ``--output``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.e2e.a11y import blocking_violations
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory
from tests.symptoms import answers_for, phq9
from tests.test_portal_support import PASSWORD, clinic_only, course, due_now, give_login, local_today
from tracker.models import CrisisContact, DoseEvent, Flag, FlagKind, PlannedDose
from tracker.services.assessments import submit_assessment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    """A phone: narrow screen, touch, and the patient's language."""
    return {**browser_context_args, "viewport": {"width": 390, "height": 844}, "has_touch": True, "locale": "en-GB"}


@pytest.fixture
def people():
    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(clinic=clinic, responsible_clinician=clinician, given_name="Alex")
    give_login(patient, "alex")
    return patient, clinician


def sign_in(page: Page, base_url: str, username: str = "alex") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Today")


def test_patient_signs_in_and_marks_a_dose_taken(page: Page, live_server, people, shots: Path) -> None:
    patient, clinician = people
    rx = due_now(patient, clinician)  # a tap now falls inside the dose's §7 window, whatever the hour
    morning = PlannedDose.objects.filter(prescription=rx, local_date=local_today(patient)).order_by("due_at").first()
    sign_in(page, live_server.url)
    page.screenshot(path=shots / "today-before.png", full_page=True)

    card = page.locator(f"#dose-{morning.pk}")
    card.get_by_role("button", name=re.compile(r"^Taken")).click()
    expect(page.get_by_role("status")).to_contain_text("Saved: Sertraline taken at")
    expect(page.locator(f"#dose-{morning.pk}")).to_contain_text("Taken at")
    page.screenshot(path=shots / "today-after-taken.png", full_page=True)
    assert DoseEvent.objects.get().planned_dose_id == morning.pk


def test_taken_at_a_future_time_shows_the_error_beside_the_field(page: Page, live_server, people, shots) -> None:
    patient, clinician = people
    rx = course(patient, clinician, times=("08:00",))
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    sign_in(page, live_server.url)
    card = page.locator(f"#dose-{dose.pk}")
    card.get_by_text("Taken at another time").click()
    card.get_by_label("When did you take it?").fill("2099-01-01T08:00")
    card.get_by_role("button", name="Save the time").click()
    field = page.locator(f"#taken-at-{dose.pk}")
    expect(field).to_be_visible()  # the form stays open, the error beside the field
    expect(page.locator(f"#taken-at-{dose.pk}-error")).to_have_text(
        "That time is in the future. Enter the time you took the dose."
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=shots / "today-future-time-error.png", full_page=True)
    assert not DoseEvent.objects.exists()


def test_esketamine_has_no_self_log_button_only_the_outside_clinic_report(page: Page, live_server, people, shots):
    patient, clinician = people
    esk = clinic_only(patient, clinician)
    session = PlannedDose.objects.get(prescription=esk, local_date=local_today(patient))
    sign_in(page, live_server.url)
    card = page.locator(f"#dose-{session.pk}")
    expect(card).to_contain_text("Given at the clinic")
    expect(card.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"Taken.*Esketamine"))).to_have_count(0)
    page.screenshot(path=shots / "today-esketamine.png", full_page=True)

    page.get_by_role("link", name="I took Esketamine (nasal) outside the clinic").click()
    page.get_by_label(re.compile("Anything you want your care team to know")).fill("Took a spray at home")
    page.get_by_role("button", name="Tell my clinic").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your clinic has been told")
    page.screenshot(path=shots / "outside-clinic-reported.png", full_page=True)
    assert Flag.objects.filter(kind=FlagKind.ESK_OUTSIDE_CLINIC, patient=patient).count() == 1


def test_phq9_with_thoughts_of_self_harm_shows_crisis_guidance_at_once(page: Page, live_server, people, shots):
    patient, _ = people
    sign_in(page, live_server.url)
    page.get_by_role("link", name="Questionnaires").click()
    page.get_by_role("link", name=re.compile(r"Fill it in.*PHQ-9")).click()
    for number in range(1, 9):
        page.locator(f"#id_q{number}").get_by_label("Several days").check()
    page.locator("#id_q9").get_by_label("More than half the days").check()
    page.screenshot(path=shots / "phq9-filled.png", full_page=True)
    page.get_by_role("button", name="Send my answers").click()

    crisis = page.get_by_role("alert")
    expect(crisis).to_be_visible()
    expect(crisis).to_contain_text("Please read this now")
    expect(crisis).to_contain_text("call your local emergency number")
    expect(crisis).to_contain_text("Your care team has been told about your answer.")
    page.screenshot(path=shots / "phq9-crisis-guidance.png", full_page=True)
    assert Flag.objects.filter(kind=FlagKind.SCALE_SUICIDALITY, patient=patient).count() == 1


def test_a_missing_answer_is_named_and_linked_without_javascript(page: Page, live_server, people) -> None:
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/questionnaires/gad7/")
    for number in range(1, 7):
        page.locator(f"#id_q{number}").get_by_label("Not at all").check()
    page.get_by_role("button", name="Send my answers").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Please answer question 7 of 7")
    summary.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#id_q7$"))


def test_progress_chart_is_drawn(page: Page, live_server, people, shots: Path) -> None:
    patient, clinician = people
    course(patient, clinician, days_ago=20)
    for weeks_ago, total in ((3, 19), (1, 15)):
        when = timezone.now() - dt.timedelta(weeks=weeks_ago)
        submit_assessment(
            patient=patient, instrument="phq9", answers=answers_for(total), source="patient", completed_at=when
        )
    sign_in(page, live_server.url)
    page.get_by_role("link", name="My progress").click()
    chart = page.locator("#chart-phq9 svg")
    expect(chart).to_be_visible()
    expect(chart.locator("circle")).to_have_count(2)
    box = chart.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150
    expect(page.get_by_role("table").first).to_be_visible()  # the adherence calendar
    page.screenshot(path=shots / "progress.png", full_page=True)


def test_another_patients_page_answers_404(page: Page, live_server, people, shots: Path) -> None:
    other_clinic = ClinicFactory(name="Southside Clinic", slug="southside")
    other = PatientFactory(clinic=other_clinic)
    theirs = phq9(other, "2026-01-05T09:00", total=12)
    sign_in(page, live_server.url)
    response = page.goto(f"{live_server.url}/answers/{theirs.pk}/")
    assert response is not None and response.status == 404
    page.screenshot(path=shots / "other-patient-404.png", full_page=True)


def test_skip_link_is_the_first_tab_stop_and_visible(page: Page, live_server, people) -> None:
    sign_in(page, live_server.url)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()


def test_undo_a_mistaken_tap_then_every_crisis_number_is_tap_to_call(page: Page, live_server, people, shots) -> None:
    """Issue 15 on a phone: undo within the window, then a self-harm answer's page of tel: links; axe-core clean."""
    patient, clinician = people
    clinic = patient.clinic
    clinic.phone = "020 7946 0000"
    clinic.crisis_guidance = "If you are in immediate danger, call 999 now."
    clinic.save()
    CrisisContact.objects.create(clinic=clinic, label="Northside duty line", number="020 7946 0001", position=0)
    CrisisContact.objects.create(clinic=clinic, label="Samaritans, day or night", number="116 123", position=1)
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    sign_in(page, live_server.url)

    page.locator(f"#dose-{dose.pk}").get_by_role("button", name=re.compile(r"^Taken")).click()
    expect(page.get_by_role("status")).to_contain_text("Saved: Sertraline taken at")
    recent = page.get_by_role("region", name="Just logged")
    expect(recent).to_contain_text("You can undo it for 10 minutes.")
    assert blocking_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll on the phone
    page.screenshot(path=shots / "today-just-logged-undo.png", full_page=True)
    recent.get_by_role("button", name=re.compile(r"^Undo")).click()
    expect(page.get_by_role("status")).to_contain_text("Undone: Sertraline is no longer recorded as taken")
    expect(page.locator(f"#dose-{dose.pk}").get_by_role("button", name=re.compile(r"^Taken"))).to_be_visible()
    event = DoseEvent.objects.get()
    assert event.entered_in_error_at is not None and event.entered_in_error_by_id == patient.user_id

    page.goto(f"{live_server.url}/questionnaires/phq9/")
    for number in range(1, 9):
        page.locator(f"#id_q{number}").get_by_label("Several days").check()
    page.locator("#id_q9").get_by_label("Several days").check()
    page.get_by_role("button", name="Send my answers").click()
    crisis = page.get_by_role("alert")
    expect(crisis).to_contain_text("Please read this now")
    for name, tel in (
        ("999", "999"),
        ("Your clinic, Northside Clinic: 020 7946 0000", "02079460000"),
        ("Northside duty line: 020 7946 0001", "02079460001"),
        ("Samaritans, day or night: 116 123", "116123"),
    ):
        expect(crisis.get_by_role("link", name=name, exact=True)).to_have_attribute("href", f"tel:{tel}")
    text_numbers = re.findall(r"\d[\d ]*\d", crisis.inner_text())
    linked = " ".join(crisis.locator('a[href^="tel:"]').all_inner_texts())
    assert all(number in linked for number in text_numbers)  # no number is left as plain text
    assert blocking_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=shots / "phq9-crisis-tel-links.png", full_page=True)


def test_a_dose_tapped_offline_waits_on_the_phone_then_is_stored_once_with_its_time(
    page: Page, live_server, people, shots
) -> None:
    """Issue 15, offline: the tap is kept with its time, the page says so, and it is sent once online."""
    patient, clinician = people
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.get(prescription=rx, local_date=local_today(patient))
    sign_in(page, live_server.url)
    worker = page.evaluate("navigator.serviceWorker.ready.then(r => [r.active.scriptURL, r.scope])")
    assert worker == [f"{live_server.url}/sw.js", f"{live_server.url}/"]  # installed from this origin, whole portal

    page.context.set_offline(True)
    tapped_from = timezone.now()
    page.locator(f"#dose-{dose.pk}").get_by_role("button", name=re.compile(r"^Taken")).click()
    waiting = page.locator("#offline-status")
    expect(waiting).to_have_text("1 dose waiting to send — it will be sent when you are back online.")
    expect(page.locator(f"#dose-{dose.pk}")).to_contain_text("waiting to send")
    tapped_to = timezone.now()
    assert not DoseEvent.objects.exists()
    assert blocking_violations(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=shots / "today-offline-waiting.png", full_page=True)

    page.wait_for_timeout(1500)  # the tap waits on the phone, so its time is not the time it arrives
    page.context.set_offline(False)
    expect(page.get_by_role("status").first).to_contain_text("Saved: Sertraline taken at")
    expect(page.locator("#offline-status")).to_be_hidden()
    page.evaluate("window.dispatchEvent(new Event('online'))")  # a second 'online': nothing is left to send
    page.wait_for_timeout(500)
    event = DoseEvent.objects.get()
    assert event.planned_dose_id == dose.pk and event.client_key is not None
    assert tapped_from - dt.timedelta(seconds=1) <= event.occurred_at <= tapped_to + dt.timedelta(seconds=1)
    assert event.created_at - event.occurred_at >= dt.timedelta(seconds=1)
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('portal.offlineTaps.')).length") == 0
    page.screenshot(path=shots / "today-offline-sent.png", full_page=True)
