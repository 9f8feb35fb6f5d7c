"""The caseload page: each column on known courses, sorting, filtering, paging, clinic scoping,
bad query strings and a query count that does not grow with patients or scores.

Courses are built with the real services (prescribe, change_dose, record_dose,
submit_assessment, the horizon job) and judged at the fixed instant NOW.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from tests import factories
from tests.dosing import at, daily_course
from tracker import clinical, scheduling
from tracker.esketamine import esketamine_phases
from tracker.models import Assessment, PlannedDose, Prescription, Severity
from tracker.selectors import caseload
from tracker.selectors.caseload import CaseloadFilters, Sort, Status
from tracker.services.assessments import submit_assessment
from tracker.services.doses import record_dose
from tracker.services.prescriptions import change_dose, prescribe
from tracker.services.records import mark_entered_in_error

NOW = at("2026-03-02T12:00")  # a Monday; London is on GMT
URL = reverse("admin:tracker_patient_caseload")


# --- Building courses with the services ---------------------------------------------------


def answers(total: int, items: int, top: int = 3, last: int | None = None) -> list[int]:
    """Item answers adding up to ``total``; ``last`` fixes the last item (PHQ-9 item 9)."""
    free = items - (1 if last is not None else 0)
    values = [min(top, max(0, total - top * i)) for i in range(free)]
    return values + ([last] if last is not None else [])


def phq9(patient, when: str, total: int, *, item9: int = 0) -> Assessment:
    return submit_assessment(
        patient=patient,
        instrument="phq9",
        answers=answers(total - item9, 9, last=item9),
        source=Assessment.Source.PATIENT,
        completed_at=at(when),
        now=NOW,
    ).assessment


def gad7(patient, when: str, total: int) -> Assessment:
    return submit_assessment(
        patient=patient,
        instrument="gad7",
        answers=answers(total, 7),
        source=Assessment.Source.PATIENT,
        completed_at=at(when),
        now=NOW,
    ).assessment


def fibser(patient, when: str) -> Assessment:
    return submit_assessment(
        patient=patient,
        instrument="fibser",
        answers=[1, 1, 1],
        source=Assessment.Source.PATIENT,
        completed_at=at(when),
        now=NOW,
    ).assessment


def scale(patient, instrument: str, when: str, values: list[int]) -> Assessment:
    """An ASEX or a PCL-5 with these item answers."""
    return submit_assessment(
        patient=patient,
        instrument=instrument,
        answers=values,
        source=Assessment.Source.PATIENT,
        completed_at=at(when),
        now=NOW,
    ).assessment


def take(rx, day: str, *, hour: int = 8, skip: bool = False):
    return record_dose(
        prescription=rx,
        occurred_at=at(f"{day}T{hour:02d}:05"),
        reporter="patient",
        outcome="skipped" if skip else "taken",
        skip_reason="Felt sick" if skip else "",
        now=NOW,
    )


def ann_course(patient, clinician):
    """Sertraline 50 mg from Mon 5 Jan 2026, 100 mg from Mon 2 Feb; PHQ-9 18 -> 12 -> 8, GAD-7 15 -> 9;
    in the last 7 days six doses taken and one skipped; a FIBSER check-in on 26 Feb."""
    rx = daily_course(patient, clinician, start="2026-01-05")
    new = change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 2, 2),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-02-01T12:00"),
    )
    scheduling.extend_horizon(now=NOW)
    phq9(patient, "2026-01-03T10:00", 18)  # baseline, two days before the start
    phq9(patient, "2026-02-01T10:00", 12)
    phq9(patient, "2026-02-27T10:00", 8, item9=1)  # raises the urgent suicidality flag at once
    gad7(patient, "2026-01-04T10:00", 15)
    gad7(patient, "2026-02-28T10:00", 9)
    fibser(patient, "2026-02-26T10:00")
    for day in ("2026-02-24", "2026-02-25", "2026-02-26", "2026-02-28", "2026-03-01", "2026-03-02"):
        take(new, day)
    take(new, "2026-02-27", skip=True)
    return new


def esketamine_course(patient, clinician, start: str = "2026-02-16"):
    start_date = dt.date.fromisoformat(start)
    rx = prescribe(
        patient=patient,
        drug=factories.drug("esketamine"),
        dose=Decimal("56"),
        start_date=start_date,
        prescriber=clinician,
        schedules=esketamine_phases(start_date=start_date),
        now=at(f"{start}T00:00") - dt.timedelta(days=1),
    )
    scheduling.extend_horizon(now=NOW)
    return rx


@pytest.fixture
def world(clinic, clinician, other_patient, other_clinician):
    """Five patients of Northside with known courses, and one of Southside."""
    ann = factories.PatientFactory(
        clinic=clinic, given_name="Ann", family_name="Able", record_number="N-1", responsible_clinician=clinician
    )
    ann_rx = ann_course(ann, clinician)
    # Ben (New York): esketamine at the clinic from 16 Feb (Mon/Thu 10:00); PHQ-9 20 -> 4.
    ben = factories.PatientFactory(
        clinic=clinic, given_name="Ben", family_name="Baker", record_number="N-2", timezone="America/New_York"
    )
    esketamine_course(ben, clinician)
    phq9(ben, "2026-02-14T15:00", 20)
    phq9(ben, "2026-02-28T15:00", 4)
    gad7(ben, "2026-02-28T15:00", 3)
    # Cara (21): escitalopram from Mon 16 Feb; PHQ-9 16 -> 14; the under-25 schedule applies.
    cara = factories.PatientFactory(
        clinic=clinic,
        given_name="Cara",
        family_name="Cole",
        record_number="N-3",
        date_of_birth=dt.date(2005, 1, 1),
        responsible_clinician=clinician,
    )
    daily_course(cara, clinician, name="escitalopram", dose="10", start="2026-02-16")
    scheduling.extend_horizon(now=NOW)
    phq9(cara, "2026-02-14T10:00", 16)
    phq9(cara, "2026-02-23T10:00", 14)
    fibser(cara, "2026-02-28T10:00")
    # Dan: sertraline from 2 Feb, first PHQ-9 on 20 Feb (too late for a baseline).
    dan = factories.PatientFactory(clinic=clinic, given_name="Dan", family_name="Dunn", record_number="N-4")
    daily_course(dan, clinician, start="2026-02-02")
    scheduling.extend_horizon(now=NOW)
    phq9(dan, "2026-02-20T10:00", 12)
    # Eve: no prescription, no score.
    eve = factories.PatientFactory(clinic=clinic, given_name="Eve", family_name="Evans", record_number="N-5")
    # Southside's patient has a course and scores too; it must never show.
    daily_course(other_patient, other_clinician, start="2026-02-02")
    phq9(other_patient, "2026-02-01T10:00", 25)
    phq9(other_patient, "2026-02-20T10:00", 2)
    return {"ann": ann, "ann_rx": ann_rx, "ben": ben, "cara": cara, "dan": dan, "eve": eve}


@pytest.fixture
def frozen(monkeypatch):
    """The view reads the clock once; the tests judge at NOW."""
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)


@pytest.fixture
def north(client, clinician, frozen):
    client.force_login(clinician.user)
    return client


def page_rows(patients, **filters) -> list[caseload.CaseloadRow]:
    rows = caseload.caseload(patients, CaseloadFilters(**filters), now=NOW)
    return caseload.caseload_page(rows, 1, 50, now=NOW).rows


def names(rows) -> list[str]:
    return [r.patient.given_name for r in rows]


def northside(clinic):
    from tracker.models import Patient

    return Patient.objects.filter(clinic=clinic)


# --- Each column on a known course --------------------------------------------------------


class TestColumns:
    def test_ann_every_column(self, world, clinic):
        row = next(r for r in page_rows(northside(clinic)) if r.patient == world["ann"])

        assert row.course.current.drug_name == "sertraline"
        assert row.course.current.dose == Decimal("100")
        assert (row.week, row.week_at_dose) == (9, 5)  # 56 days since 5 Jan; 28 since 2 Feb
        assert row.phq9.latest.total == 8
        assert row.phq9.band == "mild"
        assert row.phq9.latest_on == dt.date(2026, 2, 27)
        assert row.phq9.baseline.total == 18
        assert row.phq9.change_points == -10
        assert row.phq9.change_percent == pytest.approx(-55.6, abs=0.1)
        assert row.phq9.trend == "↓ 4 points since previous"
        assert row.phq9.recent == (18, 12, 8)
        assert (row.gad7.latest.total, row.gad7.band, row.gad7.baseline.total) == (9, "mild", 15)
        assert row.gad7.change_points == -6
        assert row.gad7.trend == "↓ 6 points since previous"
        assert row.status == Status.RESPONSE  # 10 of 18 points fewer; 8 is not below 5
        assert (row.adherence.taken, row.adherence.judged, row.adherence.percent) == (6, 7, 86)
        assert row.next_due == caseload.Due("Weekly check-in", dt.date(2026, 3, 5), overdue=False)
        assert row.next_session is None
        assert row.flags == caseload.OpenFlags(1, Severity.URGENT)  # the item-9 answer

    def test_ann_page_shows_local_dates_with_the_zone_and_links(self, north, world):
        content = north.get(URL).content.decode()

        assert "Fri 27 Feb" in content  # latest PHQ-9
        assert "Local time: Europe/London" in content  # the zone, once under the name
        assert "-10 from baseline 18 (-56 %)" in content
        assert "↓ 4 points since previous" in content
        assert "Weekly check-in: due Thu 5 Mar" in content
        assert "6 of 7 taken" in content
        assert reverse("admin:tracker_patient_timeline", args=[world["ann"].pk]) in content
        assert f"{reverse('admin:index')}?patient={world['ann'].pk}" in content
        assert "1 open flag" in content

    def test_ben_next_clinic_session_in_his_zone_and_remission(self, north, world, clinic):
        row = next(r for r in page_rows(northside(clinic)) if r.patient == world["ben"])

        assert row.status == Status.REMISSION
        # Mon/Thu 10:00 New York; at 07:00 there on Monday 2 March, today's session is next.
        assert row.next_session.due_at == dt.datetime(2026, 3, 2, 10, 0, tzinfo=row.zone)
        assert row.course.current.drug_name == "esketamine"
        assert (row.week, row.week_at_dose) == (3, 3)
        assert "Esketamine (nasal), Mon 2 Mar 10:00 (America/New_York)" in north.get(URL).content.decode()

    def test_cara_under_25_phq9_is_due_before_her_check_in(self, world, clinic):
        row = next(r for r in page_rows(northside(clinic)) if r.patient == world["cara"])

        # Weekly from the start (16 Feb): 23 Feb was answered that day, 2 March is due today.
        assert row.next_due == caseload.Due("PHQ-9 (under-25 schedule)", dt.date(2026, 3, 2), overdue=False)
        assert row.status == Status.NEITHER  # 16 -> 14
        assert row.phq9.change_points == -2

    def test_dan_has_no_baseline_and_eve_has_no_course(self, world, clinic):
        rows = {r.patient.given_name: r for r in page_rows(northside(clinic))}

        assert rows["Dan"].status == Status.NO_BASELINE
        assert rows["Dan"].phq9.latest.total == 12 and rows["Dan"].phq9.baseline is None
        eve = rows["Eve"]
        assert (eve.status, eve.course, eve.week, eve.phq9.latest) == (Status.NO_BASELINE, None, None, None)
        assert eve.adherence.percent is None
        assert eve.adherence.reason == "nothing due in the last 7 days"
        assert eve.next_due is None and eve.next_session is None

    def test_adherence_waits_for_the_sweep_and_never_counts_prn(self, clinic, clinician):
        patient = factories.PatientFactory(clinic=clinic, record_number="N-9")
        daily_course(patient, clinician, start="2026-02-20")
        prescribe(
            patient=patient,
            drug=factories.drug("lorazepam"),
            dose=Decimal("1"),
            start_date=dt.date(2026, 2, 20),
            prescriber=clinician,
            schedules=[caseload_prn()],
            now=at("2026-02-19T00:00"),
        )
        scheduling.extend_horizon(now=NOW)

        (row,) = page_rows(northside(clinic))

        # Seven sertraline doses due (none logged, none swept yet); the PRN plans nothing.
        assert row.adherence.percent is None
        assert row.adherence.reason == "7 due, none judged yet"
        assert not PlannedDose.objects.filter(prescription__drug__name="lorazepam").exists()

    def test_a_baseline_alone_is_shown_and_judged_neither(self, clinic, clinician):
        patient = factories.PatientFactory(clinic=clinic, record_number="N-9")
        daily_course(patient, clinician, start="2026-02-20")
        phq9(patient, "2026-02-19T10:00", 3)  # in remission range, but it is the baseline

        (row,) = page_rows(northside(clinic))

        assert row.status == Status.NEITHER
        assert row.phq9.baseline_only and row.phq9.latest.total == 3
        assert row.phq9.trend == "first score"


def caseload_prn():
    from tracker.services.prescriptions import ScheduleSpec

    return ScheduleSpec(kind="prn", times_of_day=(), prn_max_doses_per_day=2)


# --- SQL status = Python status -----------------------------------------------------------


def statuses(patients) -> tuple[dict, dict]:
    """(SQL status, Python status) of each patient."""
    sql = caseload.status_by_patient(patients)
    python = {r.patient.pk: r.status for r in page_rows(patients, include_discharged=True)}
    return sql, python


def test_sql_and_python_status_agree_on_every_known_course(world, clinic):
    sql, python = statuses(northside(clinic))
    assert sql == python
    assert sorted(sql.values()) == sorted(
        [Status.RESPONSE, Status.REMISSION, Status.NEITHER, Status.NO_BASELINE, Status.NO_BASELINE]
    )


@pytest.mark.parametrize(
    ("zone", "completed_at", "has_baseline"),
    [
        # Course starts on 15 Jan (local). The window is 1 Jan (15 - 14) to 22 Jan (15 + 7), local days.
        ("Pacific/Auckland", "2025-12-31T11:30", True),  # 1 Jan 00:30 in Auckland (UTC+13)
        ("Pacific/Auckland", "2025-12-31T10:30", False),  # 31 Dec 23:30 there
        ("America/Los_Angeles", "2026-01-23T07:30", True),  # 22 Jan 23:30 in Los Angeles (UTC-8)
        ("America/Los_Angeles", "2026-01-23T08:30", False),  # 23 Jan 00:30 there
        ("Europe/London", "2026-01-14T23:59", True),  # the day before the start: a prior baseline
    ],
)
def test_the_sql_baseline_window_is_on_the_patients_local_day(clinic, clinician, zone, completed_at, has_baseline):
    patient = factories.PatientFactory(clinic=clinic, timezone=zone, record_number="Z-1")
    daily_course(patient, clinician, start="2026-01-15")
    phq9(patient, completed_at, 20)
    phq9(patient, "2026-02-20T12:00", 4)  # remission whether or not there is a baseline
    phq9(patient, "2026-02-27T12:00", 9)  # latest: response from 20, neither without a baseline

    sql, python = statuses(northside(clinic))

    assert sql == python == {patient.pk: Status.RESPONSE if has_baseline else Status.NO_BASELINE}


def test_sql_status_follows_a_clinics_changed_thresholds(world, clinic, settings):
    # Remission only below 3 and response from a 90 % reduction: Ben (20 -> 4) is now neither.
    settings.TRACKER_CLINICAL_OVERRIDES = {"REMISSION_BELOW": {"phq9": 3, "madrs": 11}, "RESPONSE_REDUCTION": 0.9}
    sql, python = statuses(northside(clinic))
    assert sql == python
    assert sql[world["ben"].pk] == Status.NEITHER
    assert sql[world["ann"].pk] == Status.NEITHER


def test_an_entered_in_error_score_leaves_both_sides(world, clinic, clinician):
    latest = Assessment.objects.get(patient=world["ben"], instrument="phq9", total=4)
    mark_entered_in_error(record=latest, by=clinician.user, reason="Wrong patient")

    sql, python = statuses(northside(clinic))

    assert sql == python
    assert sql[world["ben"].pk] == Status.NEITHER  # the baseline is the only score left


# --- Sorting, filtering, paging -----------------------------------------------------------


class TestSortAndFilter:
    def test_default_order_is_by_name(self, world, clinic):
        assert names(page_rows(northside(clinic))) == ["Ann", "Ben", "Cara", "Dan", "Eve"]
        assert names(page_rows(northside(clinic), descending=True)) == ["Eve", "Dan", "Cara", "Ben", "Ann"]

    @pytest.mark.parametrize(
        ("sort", "descending", "expected"),
        [
            (Sort.PHQ9, True, ["Cara", "Dan", "Ann", "Ben", "Eve"]),  # 14, 12, 8, 4, none last
            (Sort.PHQ9, False, ["Ben", "Ann", "Dan", "Cara", "Eve"]),
            (Sort.GAD7, True, ["Ann", "Ben", "Cara", "Dan", "Eve"]),  # 9, 3, then no GAD-7 by name
            (Sort.ADHERENCE, True, ["Ann", "Ben", "Cara", "Dan", "Eve"]),  # 86 %, then nothing judged by name
            (Sort.WEEK, True, ["Ann", "Dan", "Ben", "Cara", "Eve"]),  # most weeks first: 5 Jan, 2 Feb, 16 Feb
            (Sort.WEEK, False, ["Ben", "Cara", "Dan", "Ann", "Eve"]),
        ],
    )
    def test_sorts(self, world, clinic, sort, descending, expected):
        assert names(page_rows(northside(clinic), sort=sort, descending=descending)) == expected

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            (Status.RESPONSE, ["Ann"]),
            (Status.REMISSION, ["Ben"]),
            (Status.NEITHER, ["Cara"]),
            (Status.NO_BASELINE, ["Dan", "Eve"]),
        ],
    )
    def test_status_filter(self, world, clinic, status, expected):
        rows = page_rows(northside(clinic), status=status)
        assert names(rows) == expected
        assert {r.status for r in rows} == {status}

    @pytest.mark.parametrize("sort", list(Sort))
    @pytest.mark.parametrize("descending", [False, True])
    def test_a_filtered_caseload_is_the_sorted_caseload_less_the_others(self, world, clinic, sort, descending):
        """The filter is judged on patients read already in page order (``SortedPatients``):
        it must keep exactly the rows of the unfiltered order that match, in that order."""
        everyone = page_rows(northside(clinic), sort=sort, descending=descending)
        for status in Status:
            kept = page_rows(northside(clinic), sort=sort, descending=descending, status=status)
            assert names(kept) == [r.patient.given_name for r in everyone if r.status == status]
        for band in ("mild", "moderate"):
            kept = page_rows(northside(clinic), sort=sort, descending=descending, phq9_band=band)
            assert names(kept) == [r.patient.given_name for r in everyone if r.phq9.band.lower() == band]

    def test_a_filtered_caseload_pages_in_its_order(self, world, clinic):
        filters = CaseloadFilters(status=Status.NO_BASELINE, sort=Sort.WEEK, descending=True)
        pages = [
            caseload.caseload_page(caseload.caseload(northside(clinic), filters, now=NOW), n, 1, now=NOW)
            for n in (1, 2, 3)
        ]
        assert [(names(p.rows), p.has_next) for p in pages] == [(["Dan"], True), (["Eve"], False), ([], False)]

    def test_band_clinician_search_and_discharged_filters(self, world, clinic, clinician):
        people = northside(clinic)
        assert names(page_rows(people, phq9_band="mild")) == ["Ann"]
        assert names(page_rows(people, phq9_band="moderate")) == ["Cara", "Dan"]
        assert names(page_rows(people, clinician_id=clinician.pk)) == ["Ann", "Cara"]
        assert names(page_rows(people, clinician_id=caseload.UNASSIGNED)) == ["Ben", "Dan", "Eve"]
        assert names(page_rows(people, words=caseload.search_words("N-3"))) == ["Cara"]
        assert names(page_rows(people, words=caseload.search_words("cole, cara"))) == ["Cara"]
        world["eve"].is_active = False
        world["eve"].save()
        assert "Eve" not in names(page_rows(people))
        assert "Eve" in names(page_rows(people, include_discharged=True))

    def test_the_page_sorts_and_filters_from_the_query_string(self, north, world):
        response = north.get(URL, {"sort": "-phq9", "status": "no_baseline"})
        assert [r["row"].patient.given_name for r in response.context["rows"]] == ["Dan", "Eve"]
        headers = {h.label: h for h in response.context["headers"]}
        assert headers["PHQ-9"].aria_sort == "descending"
        assert headers["Patient"].aria_sort == "none"
        assert "sort=phq9" in headers["PHQ-9"].url and "status=no_baseline" in headers["PHQ-9"].url
        content = response.content.decode()
        assert 'aria-sort="descending"' in content
        assert "<caption" in content and "sorted by PHQ-9 (descending)" in content

    def test_pages_of_the_size_asked_without_a_count(self, world, clinic, north, monkeypatch):
        first = caseload.caseload_page(caseload.caseload(northside(clinic), CaseloadFilters(), now=NOW), 1, 2, now=NOW)
        third = caseload.caseload_page(caseload.caseload(northside(clinic), CaseloadFilters(), now=NOW), 3, 2, now=NOW)
        assert (names(first.rows), first.has_next, first.has_previous) == (["Ann", "Ben"], True, False)
        assert (names(third.rows), third.has_next, third.start_index) == (["Eve"], False, 5)
        monkeypatch.setattr(caseload, "PAGE_SIZE", 2)
        content = north.get(URL, {"page": "2", "sort": "name"}).content.decode()
        assert "Patients 3–4" in content and "page=3" in content and "page=1" in content


# --- Scoping, permissions, bad input -----------------------------------------------------


def test_another_clinics_patients_never_appear(north, world, other_patient):
    for params in ({}, {"status": "remission"}, {"q": other_patient.family_name}, {"sort": "-phq9"}):
        response = north.get(URL, params)
        assert other_patient not in [r["row"].patient for r in response.context["rows"]]
        assert other_patient.record_number not in response.content.decode()


def test_a_clinician_of_another_clinic_cannot_filter_by_our_clinician(north, world, other_clinician):
    response = north.get(URL, {"clinician": str(other_clinician.pk)})
    assert response.status_code == 200
    assert response.context["filter_form"].errors  # not a choice here, so no filter at all
    assert len(response.context["rows"]) == 5


def test_superuser_sees_every_clinic(client, world, other_patient, frozen):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    shown = [r["row"].patient for r in client.get(URL).context["rows"]]
    assert other_patient in shown and world["ann"] in shown


def test_without_permission_to_view_patients_the_page_is_refused(client, clinic, frozen):
    nurse = factories.ClinicianFactory(clinic=clinic, role="nurse", user__username="nurse-no-view")
    nurse.user.groups.clear()
    client.force_login(nurse.user)
    assert client.get(URL).status_code == 403


def test_staff_without_a_clinic_membership_is_refused(client, db, frozen):
    client.force_login(factories.UserFactory(username="drifter", is_staff=True))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "garbage"},
        {"sort": "-"},
        {"sort": "name\x00"},
        {"page": "1e999"},
        {"page": "-3"},
        {"page": "99999999999999999999999999"},
        {"page": "\x00"},
        {"q": "ann\x00"},
        {"status": "\x00"},
        {"status": "cured"},
        {"band": "terrible"},
        {"clinician": "abc"},
        {"clinician": "99999999999999999999999"},
        {"discharged": "\x00"},
    ],
)
def test_bad_query_parameters_never_fail_the_page(north, world, params):
    """Nonsense is ignored; a NUL or an impossible number is refused up front (400, saying which)."""
    response = north.get(URL, params)
    value = next(iter(params.values()))
    if "\x00" in value or (value.lstrip("-").isdigit() and abs(int(value)) > 2**63):
        assert response.status_code == 400
        text = response.content.decode()
        assert "NUL character" in text or f"The value of {next(iter(params))} is too large" in text
    else:
        assert response.status_code == 200


# --- Query count ------------------------------------------------------------------------


def build_patients(clinic, clinician, count: int, scores: int) -> None:
    for i in range(count):
        patient = factories.PatientFactory(clinic=clinic, record_number=f"Q-{i}")
        rx = daily_course(patient, clinician, start="2026-02-02")
        for k in range(scores):
            phq9(patient, f"2026-02-{1 + 3 * k:02d}T10:00", 15 - k)
            gad7(patient, f"2026-02-{1 + 3 * k:02d}T11:00", 12 - k)
            scale(patient, "asex", f"2026-02-{1 + 3 * k:02d}T12:00", [4, 4, 4, 2, 2])
            scale(patient, "pcl5", f"2026-02-{1 + 3 * k:02d}T12:00", [2] * 20)
        take(rx, "2026-03-01")
        esketamine_course(patient, clinician) if i == 0 else None
    scheduling.extend_horizon(now=NOW)


@pytest.mark.parametrize(("patients", "scores"), [(2, 1), (3, 4)])
@pytest.mark.parametrize("params", [{}, {"sort": "-adherence", "status": "neither", "q": "q-", "clinician": "none"}])
def test_query_count_does_not_grow_with_patients_or_scores(
    north, clinic, clinician, django_assert_num_queries, patients, scores, params
):
    build_patients(clinic, clinician, patients, scores)
    with django_assert_num_queries(13):
        # 1. the session
        # 2. the logged-in user
        # 3. the user's clinic membership (clinician_for, once per request)
        # 4. the user's own permissions
        # 5. the user's group permissions
        # 6. the clinic's active clinicians, for the filter
        # 7. the page: size + 1 patients, sorted and filtered in SQL
        # 8. the page's courses (prescription versions with their drug)
        # 9. the page's PHQ-9, GAD-7 and FIBSER scores
        # 10. the page's planned doses of the adherence window, counted by status
        # 11. the page's next clinic sessions
        # 12. the page's open flags, counted
        # 13. the page's latest ASEX and PCL-5, and whether each patient has a PTSD course
        response = north.get(URL, params)
    assert response.status_code == 200


# --- ASEX and PCL-5 under the status (issue 15) -------------------------------------------


def ptsd_course(patient, clinician, indication: str = "Post-traumatic stress disorder (PTSD)"):
    start = dt.date(2026, 2, 2)
    return prescribe(
        patient=patient,
        drug=factories.drug("sertraline"),
        dose=Decimal("50"),
        start_date=start,
        prescriber=clinician,
        indication=indication,
        now=at("2026-02-01T00:00"),
    )


def screens_cell(html: str, patient) -> str:
    row = html.split(f'data-patient="{patient.pk}"', 1)[1].split("</tr>", 1)[0]
    return row.split('data-col="status"', 1)[1].split("</td>", 1)[0]


class TestScreens:
    def test_the_latest_asex_is_shown_and_a_positive_screen_is_marked_in_words(self, north, world, clinician):
        ann, dan = world["ann"], world["dan"]
        scale(ann, "asex", "2026-02-10T10:00", [2, 2, 2, 2, 2])  # older, negative
        scale(ann, "asex", "2026-02-27T10:00", [2, 2, 2, 5, 2])  # total 13 but one item at 5: positive
        scale(dan, "asex", "2026-02-10T10:00", [6, 6, 6, 6, 6])  # older, positive
        scale(dan, "asex", "2026-02-27T10:00", [3, 3, 3, 3, 3])  # total 15, no item >= 4: negative
        html = north.get(URL).content.decode()
        assert (
            '<div class="sub screen screen-positive" data-screen="asex">ASEX 13 <strong>positive screen</strong>, '
            "Fri 27 Feb</div>" in screens_cell(html, ann)
        )
        assert '<div class="sub screen" data-screen="asex">ASEX 15 negative screen, Fri 27 Feb</div>' in (
            screens_cell(html, dan)
        )
        assert "data-screen" not in screens_cell(html, world["cara"])  # no ASEX, nothing shown

    def test_pcl5_against_its_cut_off_for_a_ptsd_course(self, north, world, clinic, clinician):
        assert clinical.get("PCL5_PROBABLE_PTSD_MIN") == 33
        fay = factories.PatientFactory(clinic=clinic, given_name="Fay", family_name="Fox", record_number="N-6")
        gus = factories.PatientFactory(clinic=clinic, given_name="Gus", family_name="Gray", record_number="N-7")
        hal = factories.PatientFactory(clinic=clinic, given_name="Hal", family_name="Hill", record_number="N-8")
        for person in (fay, gus, hal):
            ptsd_course(person, clinician)
        scale(fay, "pcl5", "2026-02-27T10:00", [2] * 16 + [1] + [0] * 3)  # 33: at the cut-off
        scale(gus, "pcl5", "2026-02-27T10:00", [2] * 16 + [0] * 4)  # 32: below
        html = north.get(URL).content.decode()
        assert "PCL-5 33 <strong>≥ 33: probable PTSD</strong>, Fri 27 Feb" in screens_cell(html, fay)
        assert "PCL-5 32 below the cut-off of 33, Fri 27 Feb" in screens_cell(html, gus)
        assert "PCL-5 none yet (cut-off 33)" in screens_cell(html, hal)
        assert "PCL-5" not in screens_cell(html, world["ann"])  # not a PTSD course, no PCL-5

    def test_an_entered_in_error_screen_and_a_stopped_ptsd_course_leave_the_row(self, world, clinic, clinician):
        ann = world["ann"]
        wrong = scale(ann, "asex", "2026-02-27T10:00", [6, 6, 6, 6, 6])
        mark_entered_in_error(record=wrong, by=clinician.user, reason="Wrong patient")
        ptsd = ptsd_course(ann, clinician, indication="PTSD")
        row = next(r for r in page_rows(northside(clinic)) if r.patient == ann)
        assert row.screens == caseload.Screens(asex=None, pcl5=None, ptsd_course=True)
        Prescription.objects.filter(pk=ptsd.pk).update(status=Prescription.Status.STOPPED)
        row = next(r for r in page_rows(northside(clinic)) if r.patient == ann)
        assert row.screens == caseload.Screens()


# --- Not on track (§4 not_improving after six weeks; tracker.trajectory) --------------------


def course_days_ago(clinic, clinician, record: str, days: int, baseline: int, latest: int):
    """Sertraline 50 mg (its usual minimum: adequate) started ``days`` before NOW; PHQ-9
    ``baseline`` the day before the start and ``latest`` yesterday."""
    patient = factories.PatientFactory(clinic=clinic, responsible_clinician=clinician, record_number=record)
    start = NOW.date() - dt.timedelta(days=days)
    daily_course(patient, clinician, start=start.isoformat())
    phq9(patient, f"{start - dt.timedelta(days=1)}T10:00", baseline)
    phq9(patient, f"{NOW.date() - dt.timedelta(days=1)}T10:00", latest)
    return patient


class TestNotOnTrack:
    def test_never_before_six_weeks_even_with_no_improvement(self, clinic, clinician):
        course_days_ago(clinic, clinician, "N-35", days=35, baseline=20, latest=20)  # §4 not_improving holds
        course_days_ago(clinic, clinician, "N-41", days=41, baseline=20, latest=20)
        rows = page_rows(northside(clinic))
        assert [(r.week, r.not_on_track) for r in rows] == [(6, ()), (6, ())]

    def test_at_six_weeks_19_percent_is_not_on_track_and_20_percent_is(self, clinic, clinician):
        slow = course_days_ago(clinic, clinician, "N-19", days=42, baseline=21, latest=17)  # 19.0 % better
        edge = course_days_ago(clinic, clinician, "N-20", days=42, baseline=20, latest=16)  # 20 % better
        rows = {r.patient.pk: r for r in page_rows(northside(clinic))}
        assert len(rows[slow.pk].not_on_track) == 1
        assert "19% better, below the 20% expected by day 28" in rows[slow.pk].not_on_track[0]
        assert rows[edge.pk].not_on_track == ()

    def test_after_eight_weeks_half_is_expected(self, clinic, clinician):
        # §4 not_improving's second checkpoint (day 56, < 50 %), reused as it is.
        slow = course_days_ago(clinic, clinician, "N-45", days=60, baseline=22, latest=12)  # 45 % better
        halved = course_days_ago(clinic, clinician, "N-50", days=60, baseline=22, latest=11)  # 50 %: a response
        rows = {r.patient.pk: r for r in page_rows(northside(clinic))}
        assert [m.split(": ")[1] for m in rows[slow.pk].not_on_track] == [
            "45% better, below the 50% expected by day 56."
        ]
        assert rows[halved.pk].not_on_track == ()

    def test_the_page_shows_it_as_decision_support(self, north, clinic, clinician):
        slow = course_days_ago(clinic, clinician, "N-19", days=42, baseline=21, latest=17)
        on_track = course_days_ago(clinic, clinician, "N-20", days=42, baseline=20, latest=16)
        content = north.get(URL).content.decode()
        row = content.split(f'data-patient="{slow.pk}"')[1].split("</tr>")[0]
        assert "not on track (decision support)" in row
        assert "is the clinician's decision" in row
        other = content.split(f'data-patient="{on_track.pk}"')[1].split("</tr>")[0]
        assert "not on track" not in other


@pytest.mark.django_db
def test_the_adherence_sort_reads_a_covering_index_on_postgresql():
    """Migration 0035: (patient_id, due_at) INCLUDE (status), so the 7-day share needs no table read."""
    from django.db import connection

    from tests.conftest import need_service

    need_service(connection.vendor == "postgresql", "covering indexes are a PostgreSQL feature")
    with connection.cursor() as cursor:
        cursor.execute("select indexdef from pg_indexes where indexname = 'tracker_pd_patient_due_status'")
        (definition,) = cursor.fetchone()
    assert "(patient_id, due_at) INCLUDE (status)" in definition
