"""Issue 15 in real headless Chromium: the shorter weekly check-in on a 390×844 phone, and ASEX and
PCL-5 from the patient's portal to the clinician's caseload.

Page heights are measured and written to ``checkin-heights.json`` beside the screenshots (the
figures for the report); only what must hold is asserted: no sideways scroll, 0 axe-core violations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import PASSWORD
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory
from tests.test_portal_support import course, give_login, local_today
from tracker.models import Assessment, PlannedDose, Prescription, SideEffectReport

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
PHONE = {"width": 390, "height": 844}
_AXE = Axe()


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": PHONE, "has_touch": True, "locale": "en-GB"}


@pytest.fixture
def people():
    """Alex takes sertraline for PTSD (so ASEX and PCL-5 are both offered) from 3 days ago and
    quetiapine at night from today, every dose up to today's taken: a 4-day streak."""
    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(
        clinic=clinic, responsible_clinician=clinician, given_name="Alex", family_name="Ames", record_number="N-0042"
    )
    give_login(patient, "alex")
    sertraline = course(patient, clinician, name="sertraline", times=("08:00",), days_ago=3)
    Prescription.objects.filter(pk=sertraline.pk).update(indication="Post-traumatic stress disorder (PTSD)")
    course(patient, clinician, name="quetiapine", dose="150", times=("21:00",))
    PlannedDose.objects.filter(patient=patient, local_date__lte=local_today(patient)).update(
        status=PlannedDose.Status.TAKEN
    )
    return patient, clinician


def violations(page: Page) -> list[str]:
    """Every axe-core violation, whatever its impact."""
    found = _AXE.run(page).response["violations"]
    return [f"{v['id']}: {v['impact']}, {len(v['nodes'])} nodes ({v['nodes'][0]['target']})" for v in found]


def sign_in(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill("alex")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Today")


def size(page: Page) -> dict[str, int]:
    return page.evaluate(
        "({height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth})"
    )


def answer(question: Locator, label: str | re.Pattern) -> None:
    question.get_by_label(label).check()


def test_the_weekly_checkin_fits_a_phone_and_names_the_medicines(page: Page, live_server, people, shots: Path):
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}{reverse('portal:checkin')}")
    question = re.compile("while taking quetiapine and sertraline")
    expect(page.get_by_role("heading", level=2, name=question)).to_be_visible()
    closed = size(page)
    page.screenshot(path=shots / "checkin-390.png", full_page=True)
    assert closed["width"] <= PHONE["width"], f"the check-in scrolls sideways ({closed['width']} px)"
    assert violations(page) == []

    # The three FIBSER questions: a row of chips each; the effects common to the two medicines.
    fibser = page.locator("fieldset.question-chips").filter(has=page.locator(".chips-scale"))
    expect(fibser).to_have_count(3)
    answer(fibser.nth(0), "2 – 10–25% of the time")
    answer(fibser.nth(1), "2 – trivial")
    answer(fibser.nth(2), "0 – no impairment")
    page.get_by_role("group", name="Feeling very sleepy or drowsy").get_by_label("Moderate").check()

    # "Something else?" opens to the rest of the list and the patient's own words.
    page.get_by_text("Something else?", exact=True).click()
    page.get_by_role("group", name="Pain or urgency when passing urine").get_by_label("Mild").check()
    page.get_by_label("Another side effect? Describe it in your own words (optional)").fill("Vivid dreams")
    page.get_by_role("group", name="How strong is it?").get_by_label("Mild").check()
    opened = size(page)
    page.screenshot(path=shots / "checkin-390-something-else.png", full_page=True)
    assert opened["width"] <= PHONE["width"], f"'Something else?' scrolls sideways ({opened['width']} px)"
    assert violations(page) == []
    (shots / "checkin-heights.json").write_text(json.dumps({"closed": closed, "open": opened}))

    page.get_by_role("button", name="Send my check-in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("your answers have been saved")
    checkin = Assessment.objects.get(instrument="fibser")
    assert (checkin.answers, checkin.total) == ([2, 2, 0], 4)
    stored = {(r.effect, r.severity, r.description) for r in SideEffectReport.objects.filter(checkin=checkin)}
    assert stored == {("sedation", "moderate", ""), ("urinary", "mild", ""), ("other", "mild", "Vivid dreams")}

    # My progress: the streak, in words.
    page.get_by_role("link", name="See my progress").click()
    expect(page.locator("#streak-heading")).to_have_text("4 days in a row with every dose taken")
    page.locator(".card-streak").screenshot(path=shots / "progress-streak-390.png")
    assert violations(page) == []
    assert size(page)["width"] <= PHONE["width"]


def fill_in(page: Page, answers: list[str]) -> None:
    """One answer per question, in order, by its label."""
    questions = page.locator("fieldset.question")
    expect(questions).to_have_count(len(answers))
    for i, label in enumerate(answers):
        questions.nth(i).get_by_label(label, exact=True).check()


def test_asex_and_pcl5_from_the_portal_to_the_caseload(page: Page, live_server, people, shots: Path):
    patient, _ = people
    sign_in(page, live_server.url)

    # ASEX: one answer at 5 is a positive screen (§5), whatever the total (here 13).
    page.goto(f"{live_server.url}{reverse('portal:questionnaires')}")
    page.get_by_role("link", name="Sex life and medicines (ASEX)").click()
    fill_in(page, ["2: Very strong", "2: Very easily", "2: Very easily", "5: Very difficult", "2: Very satisfying"])
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_text("Your score is 13 out of 30.")).to_be_visible()
    page.screenshot(path=shots / "asex-result-390.png", full_page=True)
    assert violations(page) == []
    assert size(page)["width"] <= PHONE["width"]

    # PCL-5 (the sertraline is for PTSD): "Moderately" to all 20 is 40, over the cut-off of 33.
    page.goto(f"{live_server.url}{reverse('portal:questionnaires')}")
    page.get_by_role("link", name="Stress after a very stressful experience (PCL-5)").click()
    assert violations(page) == []
    fill_in(page, ["Moderately"] * 20)
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_text("Your score is 40 out of 80.")).to_be_visible()
    page.screenshot(path=shots / "pcl5-result-390.png", full_page=True)
    assert violations(page) == []
    assert {a.instrument: a.total for a in Assessment.objects.filter(patient=patient)} == {"asex": 13, "pcl5": 40}

    # The clinician's caseload, at 1366 px: both, the positive findings in words.
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/tracker/patient/caseload/")
    page.get_by_label("Username").fill("dr-north")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    row = page.locator(f'tr[data-patient="{patient.pk}"]')
    expect(row.locator('[data-screen="asex"]')).to_contain_text("ASEX 13 positive screen")
    expect(row.locator('[data-screen="pcl5"]')).to_contain_text("PCL-5 40 ≥ 33: probable PTSD")
    page.screenshot(path=shots / "caseload-screens-1366.png", full_page=True)

    # At 768 px the lines wrap inside the status column: the table is no wider with them than without.
    page.set_viewport_size({"width": 768, "height": 1024})
    table_width = "document.querySelector('#caseload').scrollWidth"
    with_screens = page.evaluate(table_width)
    page.screenshot(path=shots / "caseload-screens-768.png", full_page=True)
    page.evaluate("document.querySelectorAll('#caseload .screen').forEach(e => e.remove())")
    assert with_screens <= page.evaluate(table_width), "the ASEX/PCL-5 lines widen the caseload at 768 px"
