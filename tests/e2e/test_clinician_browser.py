"""The clinician workspace in real headless Chromium: triage by patient, resolving with a note, the course chart.

The clinician signs in through the admin's own login form. Screenshots go to pytest-playwright's
output folder (``test-results/`` by default, or ``--output``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.dosing import at
from tests.e2e.a11y import blocking_violations
from tests.e2e.conftest import PASSWORD
from tests.factories import ClinicFactory, ClinicianFactory, PatientFactory
from tests.factories import drug as drug_named
from tests.test_timeline import build_course
from tracker import clinical
from tracker.models import Flag, FlagKind, Severity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def flag(patient, severity: int, kind: str, when: str, title: str = "") -> Flag:
    return Flag.objects.create(
        patient=patient,
        kind=kind,
        severity=severity,
        dedup_key=f"browser:{patient.pk}:{kind}",
        message=f"{Severity(severity).label}: {kind}.",
        action="Review today.",
        raised_at=at(when),
        title=title,
        priority=clinical.triage_priority(kind),
    )


SIZES = {"desktop": (1366, 900), "tablet": (768, 1024), "phone": (390, 844)}


def test_clinician_triages_by_patient_and_reads_the_chart(page: Page, live_server, shots: Path) -> None:
    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(clinic=clinic, responsible_clinician=clinician, record_number="N-0042")
    build_course(patient, clinician)  # PHQ-9 16 -> 7 -> 4, a warning flag on 8 June
    waiting = PatientFactory(clinic=clinic, responsible_clinician=clinician, record_number="N-0007")
    # The oldest flag is a single missed dose of another patient: triage still puts it last.
    flag(waiting, Severity.WARNING, FlagKind.DOSE_MISSED, "2026-06-01T09:00", title="Sertraline 50 mg")
    urgent = flag(patient, Severity.URGENT, FlagKind.SE_SEVERE, "2026-06-05T09:00")
    critical = flag(patient, Severity.CRITICAL, FlagKind.SCALE_SUICIDALITY, "2026-06-20T09:00")

    # 1. Sign in: the landing page is one row per patient, the most important first.
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("dr-north")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Patients to look at")).to_be_visible()
    rows = page.locator("tr.patient-row")
    expect(rows).to_have_count(2)
    assert [rows.nth(i).get_attribute("data-patient") for i in range(2)] == [str(patient.pk), str(waiting.pk)]
    expect(rows.nth(1)).to_contain_text("Sertraline 50 mg: 1 dose missed (01 Jun)")
    # The table uses the screen: not the admin dashboard's 600 px column.
    table = page.locator("#triage").bounding_box()
    assert table is not None and table["width"] > 1100
    # The row opens in place to the flags behind it.
    row = rows.nth(0)
    row.get_by_text("flags behind this row").click()
    expect(row.locator(f'li[data-flag="{critical.pk}"]')).to_be_visible()
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / f"triage-{name}.png"), full_page=True)
        assert blocking_violations(page) == [], name
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, f"{name}: the page scrolls sideways ({scroll} px)"
    page.set_viewport_size({"width": 1366, "height": 900})

    # 2. Resolving the patient's row without a note is refused, because a flag is critical...
    row.get_by_role("button", name="Resolve all").click()
    expect(page.locator(".messagelist")).to_contain_text("nothing was changed. A note is required")
    # ...and with a note both of the patient's flags are resolved, each keeping the note.
    row = page.locator(f'tr[data-patient="{patient.pk}"]')
    row.get_by_label(f"Note for {patient}'s flags").fill("Seen today; safety plan agreed, nausea settling.")
    row.get_by_role("button", name="Resolve all").click()
    expect(page.locator(".messagelist")).to_contain_text(f"Resolved 3 flags for {patient}.")
    expect(page.locator(f'tr[data-patient="{patient.pk}"]')).to_have_count(0)
    for done in (urgent, critical):
        done.refresh_from_db()
        assert (done.status, done.resolution_note) == (
            Flag.Status.RESOLVED,
            "Seen today; safety plan agreed, nausea settling.",
        )

    # 3. The patient search filters the list: a name that matches nobody empties it.
    search = page.get_by_role("searchbox", name="Patient")
    search.fill("Nobody-by-this-name")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No patient has open flags that match these filters.")).to_be_visible()
    page.goto(f"{live_server.url}/admin/tracker/patient/{patient.pk}/timeline/")

    # 4. The patient's course: the PHQ-9 chart renders with its three scores and its lines.
    chart = page.locator("svg#chart-phq9")
    expect(chart).to_be_visible()
    expect(chart.locator("circle.point")).to_have_count(3)
    expect(chart.locator("g.ref-response")).to_have_count(1)
    expect(chart.locator("g.ref-remission")).to_have_count(1)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    expect(page.get_by_text("supports clinical judgement; it does not replace it")).to_be_visible()
    page.screenshot(path=str(shots / "course-timeline.png"), full_page=True)


def test_course_chart_shows_the_expected_course_band_and_the_dose_change(page: Page, live_server, shots: Path):
    """§4 time_course as a shaded band (weeks 6-12) under a severe course's PHQ-9 scores and its dose change."""
    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    clinician = ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(clinic=clinic, responsible_clinician=clinician, record_number="N-0042")
    build_course(patient, clinician, baseline=22)  # PHQ-9 22 -> 7 -> 4, 50 -> 100 mg on 15 June

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/tracker/patient/{patient.pk}/timeline/")
    page.get_by_label("Username").fill("dr-north")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    chart = page.locator("svg#chart-phq9")
    expect(chart).to_be_visible()
    band = chart.locator("g.band-expected polygon")
    expect(band).to_have_count(1)
    box = band.bounding_box()
    assert box is not None and box["width"] > 50 and box["height"] > 20  # drawn, not a degenerate sliver
    expect(chart.locator("g.marker")).to_have_count(1)
    expect(chart.locator("circle.point")).to_have_count(3)
    expect(chart.locator("desc")).to_contain_text("Expected course on Sertraline (baseline 22)")
    chart.scroll_into_view_if_needed()
    chart.screenshot(path=str(shots / "course-chart-trajectory.png"))
    assert blocking_violations(page) == []


def test_demo_clinic_worklist_caseload_and_flag_pages_at_desktop_and_tablet(page: Page, live_server, shots: Path):
    """The demo after its first sweep, as a new clinic first sees it: the three safety problems on top.

    The worklist, the caseload and a flag's page each use the screen at 1366 px, stay usable at
    768 px (no sideways scroll), and have no serious or critical axe-core violation.
    """
    from io import StringIO

    from django.core.management import call_command

    from tracker.management.commands import seed_demo

    call_command("seed_demo", stdout=StringIO())
    call_command("run_sweeps", stdout=StringIO())
    outside = Flag.objects.get(kind=FlagKind.ESK_OUTSIDE_CLINIC)

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(seed_demo.PRESCRIBER_USERNAME)
    page.get_by_label("Password").fill(seed_demo.PRESCRIBER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    rows = page.locator("tr.patient-row")
    for i, record_number in enumerate(("RVP-0016", "RVP-0003", "RVP-0006")):
        expect(rows.nth(i)).to_contain_text(record_number)
    page.screenshot(path=str(shots / "demo-worklist-1366.png"))

    pages = {
        "worklist": "/admin/",
        "caseload": "/admin/tracker/patient/caseload/",
        "flag": f"/admin/tracker/flag/{outside.pk}/change/",
    }
    for name, url in pages.items():
        page.goto(f"{live_server.url}{url}")
        for size in ("desktop", "tablet"):
            width, height = SIZES[size]
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(shots / f"demo-{name}-{size}.png"), full_page=True)
            assert blocking_violations(page) == [], (name, size)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width + 1, f"{name} at {size}: the page scrolls sideways ({scroll} px)"
        content = page.locator("#content").inner_text()
        assert outside.dedup_key not in content and "Dedup" not in content, name
    # The caseload lists every patient of the clinic, the flag page says what to do.
    page.goto(f"{live_server.url}/admin/tracker/patient/caseload/")
    expect(page.locator("#content")).to_contain_text("Price, David")


def test_prescriber_prescribes_esketamine_phases_from_the_patient_page(page: Page, live_server, shots: Path) -> None:
    """Open the patient, prescribe esketamine with its phases, read the previewed sessions, save."""
    import datetime as dt

    from django.utils import timezone

    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    ClinicianFactory(clinic=clinic, user__username="dr-north")
    patient = PatientFactory(clinic=clinic, record_number="N-0042", timezone="Europe/London")
    today = timezone.now().astimezone(patient.zone).date()
    start = today + dt.timedelta(days=1)  # tomorrow: today's 10:00 may already have passed
    second_day = (start.weekday() + 3) % 7

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/tracker/patient/{patient.pk}/change/")
    page.get_by_label("Username").fill("dr-north")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Prescribe").click()
    expect(page.get_by_role("heading", name=patient.full_name, exact=True)).to_be_visible()
    expect(page.get_by_label("Start date")).to_have_value(today.isoformat())  # renders, in the patient's zone
    page.get_by_label("Drug").select_option(
        label=next(o for o in page.locator("#id_drug option").all_inner_texts() if o.startswith("Esketamine"))
    )
    page.get_by_label("Dose:", exact=True).fill("56")
    page.get_by_label("Esketamine phases", exact=False).check()
    # Only the phase regimen's fields remain: no "every N days" or PRN cap to misread.
    expect(page.locator(".form-row.field-interval_days")).to_be_hidden()
    expect(page.locator(".form-row.field-prn_max_doses_per_day")).to_be_hidden()
    expect(page.locator(".form-row.field-continuation_every_weeks")).to_be_visible()
    page.get_by_label("Times of day").fill("10:00")
    names = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label(names[start.weekday()], exact=True).check()
    page.get_by_label(names[second_day], exact=True).check()
    page.get_by_label("Indication").fill("Treatment-resistant depression")
    page.get_by_role("button", name="Preview planned doses").click()
    sessions = page.locator("#dose-preview li")
    expect(sessions).to_have_count(8)
    first_local = f"{start:%a} {start.day} {start:%b %Y}, 10:00"
    expect(sessions.first).to_contain_text(first_local)
    for size in ("desktop", "tablet"):
        width, height = SIZES[size]
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(shots / f"prescribe-esketamine-{size}.png"), full_page=True)
        assert blocking_violations(page) == [], size
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, f"prescribe at {size}: the page scrolls sideways ({scroll} px)"
    page.set_viewport_size({"width": 1366, "height": 900})
    page.get_by_role("button", name="Prescribe", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text(f"for {patient}")
    rx = patient.prescriptions.get()
    assert sorted(rx.schedules.values_list("phase", flat=True)) == ["continuation", "induction", "maintenance"]
    assert rx.schedules.get(phase="induction").end_date == start + dt.timedelta(weeks=4, days=-1)

    # The change-dose page, from the prescription: labelled, and no serious or critical violation.
    page.get_by_role("link", name="Change dose").click()
    expect(page.get_by_label("Effective date")).to_have_value(today.isoformat())
    page.screenshot(path=str(shots / "change-dose-desktop.png"), full_page=True)
    assert blocking_violations(page) == [], "change dose"


def test_nurse_records_a_whole_session_from_the_planned_one_and_signs_it_off(page: Page, live_server, shots: Path):
    """Today's sessions -> Start session -> a live high-BP warning before saving -> dosing -> the floor
    shows the next due check -> monitoring and discharge -> sign-off. Times typed on the page's clock."""
    import datetime as dt
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from tracker.models import InClinicSession
    from tracker.services.prescriptions import ScheduleSpec, prescribe

    clinic = ClinicFactory(name="Northside Clinic", slug="northside")
    prescriber = ClinicianFactory(clinic=clinic, user__username="dr-north")
    ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-north")
    patient = PatientFactory(clinic=clinic, record_number="N-0042", timezone="Europe/London")
    prescribe(
        patient=patient,
        drug=drug_named("esketamine"),
        dose=Decimal("56"),
        start_date=timezone.now().astimezone(patient.zone).date(),
        prescriber=prescriber,
        indication="Treatment-resistant depression",
        schedules=[ScheduleSpec(kind="weekdays", times_of_day=("23:59",), weekdays=tuple(range(7)))],
    )

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/tracker/inclinicsession/today/")
    page.get_by_label("Username").fill("nurse-north")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name=f"Start session of {patient}").click()
    expect(page.locator("#session-patient")).to_have_text(patient.full_name)
    zone = ZoneInfo(page.locator("p.help", has_text="Times on this page are in").inner_text().split(" in ")[-1][:-1])
    now = timezone.now()

    def local(minutes_ago: int) -> str:
        return (now - dt.timedelta(minutes=minutes_ago)).astimezone(zone).strftime("%Y-%m-%dT%H:%M")

    # 1. Pre-dose BP above 140/90: the warning shows as it is typed, before any save.
    warning = page.locator("#bp-live-warning")
    expect(warning).to_be_hidden()
    page.get_by_label("BP before dosing: systolic").fill("152")
    page.get_by_label("BP before dosing: diastolic").fill("94")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("above the label threshold of 140/90 mmHg")
    page.get_by_role("textbox", name="BP before dosing taken at").fill(local(140))
    page.screenshot(path=str(shots / "session-start-warning.png"), full_page=True)
    assert blocking_violations(page) == [], "session start"
    page.get_by_role("button", name="Save and continue editing").click()
    session = InClinicSession.objects.get()

    # 2. The decision, then the first device 130 minutes ago.
    page.get_by_label("Decision on high blood pressure").select_option("proceeded")
    page.get_by_label("Bp decision reason").fill("Repeat reading 138/86 after rest")
    page.get_by_label("Esketamine devices").fill("2")
    page.get_by_role("textbox", name="First device / infusion start").fill(local(130))
    page.get_by_label("Lot number").fill("L2026-12")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_be_visible()

    # 3. The floor: the 40-minute BP is the next due check (overdue here: the device was 130 min ago).
    page.goto(f"{live_server.url}/admin/tracker/inclinicsession/floor/")
    row = page.locator(f'tr[data-session="{session.pk}"]')
    expect(row).to_contain_text(re.compile(r"40-minute BP overdue by 9\d min"))  # ~90, by the clock
    page.screenshot(path=str(shots / "session-floor.png"), full_page=True)
    assert blocking_violations(page) == [], "floor"

    # 4. Monitoring and discharge, then sign-off.
    page.goto(f"{live_server.url}/admin/tracker/inclinicsession/{session.pk}/change/")
    for label, value in (
        ("BP ~40 min: systolic", "136"),
        ("BP ~40 min: diastolic", "84"),
        ("Lowest SpO2 (%)", "96"),
        ("Lowest MOAA/s", "4"),
        ("BP at discharge: systolic", "128"),
        ("BP at discharge: diastolic", "80"),
        ("MOAA/s at discharge", "5"),
    ):
        page.get_by_label(label).fill(value)
    page.get_by_role("textbox", name="BP ~40 min taken at").fill(local(90))
    # Discharge is now: the "Now" button fills the clinic's wall clock.
    page.get_by_role("button", name="Now: Discharge at").click()
    expect(page.get_by_role("textbox", name="Discharge at")).to_have_value(re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d"))
    page.get_by_label("Dissociation resolved at discharge").select_option("true")
    page.get_by_label("No driving acknowledged").check()
    page.get_by_label("Respiratory depression").select_option("false")
    page.get_by_role("button", name="Save and sign off").click()
    expect(page.locator(".messagelist")).to_contain_text("Session signed off")
    session.refresh_from_db()
    assert session.status == "completed" and session.signed_off_at is not None
    page.screenshot(path=str(shots / "session-signed-off.png"), full_page=True)
    assert blocking_violations(page) == [], "signed off"
