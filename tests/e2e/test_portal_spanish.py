"""The portal in Spanish in real headless Chromium on a 390×844 phone (issue 15).

A Spanish-speaking patient signs in through the login page their browser asks for in Spanish,
logs a dose on Today and sends a PHQ-9 in its official Spanish wording; a questionnaire
without an official translation says so. axe-core finds no blocking violation and none of its
language rules fails, so the page's lang and the English passages marked lang="en" hold.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.a11y import BLOCKING
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory
from tests.test_portal_support import PASSWORD, due_now, give_login, local_today
from tracker.models import Assessment, DoseEvent, PlannedDose
from tracker.portal import instruments

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
_AXE = Axe()


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    """A phone whose browser asks for Spanish (Mexico) first."""
    return {**browser_context_args, "viewport": {"width": 390, "height": 844}, "has_touch": True, "locale": "es-MX"}


# axe-core's language rules: the page has a lang, it is valid, and so is every lang="..." inside it.
LANGUAGE_RULES = {"html-has-lang", "html-lang-valid", "valid-lang", "html-xml-lang-mismatch"}


def violations(page: Page) -> list[str]:
    """The project's blocking violations (serious, critical) and any of the language rules, whatever its impact."""
    results = _AXE.run(page).response
    assert {"html-has-lang", "html-lang-valid"} <= {rule["id"] for rule in results["passes"]}
    return [
        f"{v['id']}: {v['impact']}, {len(v['nodes'])} nodes ({v['nodes'][0]['target']})"
        for v in results["violations"]
        if v.get("impact") in BLOCKING or v["id"] in LANGUAGE_RULES
    ]


def test_a_spanish_patient_uses_today_and_a_questionnaire_in_spanish(page: Page, live_server, shots: Path) -> None:
    clinic = ClinicFactory(name="Clínica Norte", slug="norte")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-norte")
    patient = PatientFactory(clinic=clinic, responsible_clinician=clinician, given_name="Lucía", language="es")
    give_login(patient, "lucia")
    rx = due_now(patient, clinician)
    dose = PlannedDose.objects.filter(prescription=rx, local_date=local_today(patient)).order_by("due_at").first()

    # Before sign-in the browser's language decides.
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    page.get_by_label("Nombre de usuario").fill("lucia")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()

    # Today, in the patient's own language.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hoy, ")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", name="Dosis de hoy")).to_be_visible()
    page.screenshot(path=shots / "es-today.png", full_page=True)
    assert violations(page) == []
    page.locator(f"#dose-{dose.pk}").get_by_role("button", name=re.compile(r"^Tomado")).click()
    expect(page.get_by_role("status").first).to_contain_text("Guardado: Sertraline tomado a las")
    assert DoseEvent.objects.get().planned_dose_id == dose.pk

    # PHQ-9 in its official Spanish wording, scored as in English.
    page.get_by_role("link", name="Cuestionarios", exact=True).click()
    page.get_by_role("link", name=re.compile(r"Contestarlo.*PHQ-9")).click()
    expect(page.get_by_role("group", name=f"1. {instruments.PHQ9_ES.items[0]}")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.screenshot(path=shots / "es-phq9.png", full_page=True)
    assert violations(page) == []
    for number in range(1, 10):  # "several days" to all but the ninth (thoughts of self-harm): "not at all"
        answer = "Ningún día" if number == 9 else "Varios días"
        page.get_by_role("group", name=re.compile(rf"^{number}\. ")).get_by_text(answer).click()
    page.get_by_role("button", name="Enviar mis respuestas").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Gracias: sus respuestas se guardaron")
    expect(page.get_by_text("Su puntaje es 8 de 27.")).to_be_visible()
    assert Assessment.objects.get(instrument="phq9").total == 8

    # A questionnaire with no official Spanish text: the authors' English, and a notice.
    page.goto(f"{live_server.url}/questionnaires/gad7/")
    expect(page.get_by_role("note")).to_contain_text("Este cuestionario todavía no está disponible en su idioma.")
    page.screenshot(path=shots / "es-gad7-untranslated.png", full_page=True)
    assert violations(page) == []
