"""The clinician workspace in real headless Chromium: worklist, resolving with a note, the course chart.

The clinician signs in through the admin's own login form. Screenshots go to pytest-playwright's
output folder (``test-results/`` by default, or ``--output``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.dosing import at
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory
from tests.test_timeline import build_course
from tracker.models import Flag, FlagKind, Severity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PASSWORD = "correct-horse-battery-staple"  # tests.factories.UserFactory


@pytest.fixture
def shots(output_path: str) -> Path:
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def flag(patient, severity: int, kind: str, when: str) -> Flag:
    return Flag.objects.create(
        patient=patient,
        kind=kind,
        severity=severity,
        dedup_key=f"browser:{kind}",
        message=f"{Severity(severity).label}: {kind}.",
        action="Review today.",
        raised_at=at(when),
    )


def test_clinician_works_the_worklist_and_reads_the_chart(page: Page, live_server, shots: Path) -> None:
    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(clinic=clinic, responsible_clinician=clinician, record_number="N-0042")
    build_course(patient, clinician)  # PHQ-9 16 -> 7 -> 4, a warning flag on 8 June
    urgent = flag(patient, Severity.URGENT, FlagKind.SE_SEVERE, "2026-06-05T09:00")
    critical = flag(patient, Severity.CRITICAL, FlagKind.SCALE_SUICIDALITY, "2026-06-20T09:00")

    # 1. Sign in: the landing page is the worklist, most severe first.
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("dr-north")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Flags to work")).to_be_visible()
    rows = page.locator("tr.flag-row")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-severity") for i in range(3)] == ["40", "30", "20"]
    assert rows.nth(0).get_attribute("data-flag") == str(critical.pk)
    page.screenshot(path=str(shots / "worklist.png"), full_page=True)

    # 2. Resolving the urgent flag without a note is refused with the service's message...
    row = page.locator(f'tr[data-flag="{urgent.pk}"]')
    row.get_by_role("button", name="Resolve").click()
    expect(page.locator(".messagelist")).to_contain_text("A note is required to close an urgent flag.")
    # ...and with a note it is resolved and leaves the worklist.
    row = page.locator(f'tr[data-flag="{urgent.pk}"]')
    row.get_by_label(f"Resolution note for flag {urgent.pk}").fill("Spoke to the patient; nausea settling.")
    row.get_by_role("button", name="Resolve").click()
    expect(page.locator(".messagelist")).to_contain_text("Resolved:")
    expect(page.locator(f'tr[data-flag="{urgent.pk}"]')).to_have_count(0)
    urgent.refresh_from_db()
    assert (urgent.status, urgent.resolution_note) == (Flag.Status.RESOLVED, "Spoke to the patient; nausea settling.")

    # 3. The patient search filters the list: a name that matches nobody empties it, the record number
    #    brings the patient's flags back.
    search = page.get_by_role("searchbox", name="Patient")
    search.fill("Nobody-by-this-name")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No unresolved flags match these filters.")).to_be_visible()
    search = page.get_by_role("searchbox", name="Patient")
    search.fill(patient.record_number.lower())
    search.press("Enter")
    expect(page.locator("tr.flag-row")).to_have_count(2)
    expect(page.get_by_role("searchbox", name="Patient")).to_have_value(patient.record_number.lower())

    # 4. The patient's course: the PHQ-9 chart renders with its three scores and its lines.
    page.locator(f'tr[data-flag="{critical.pk}"]').get_by_role("link", name=str(patient)).click()
    chart = page.locator("svg#chart-phq9")
    expect(chart).to_be_visible()
    expect(chart.locator("circle.point")).to_have_count(3)
    expect(chart.locator("g.ref-response")).to_have_count(1)
    expect(chart.locator("g.ref-remission")).to_have_count(1)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    expect(page.get_by_text("supports clinical judgement; it does not replace it")).to_be_visible()
    page.screenshot(path=str(shots / "course-timeline.png"), full_page=True)
