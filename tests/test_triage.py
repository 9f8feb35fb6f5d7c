"""The triage worklist (issue 17): one row per patient, ranked, good news left out, acting on the patient."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests import factories
from tests.test_worklist import texts
from tracker import clinical
from tracker.models import Clinician, Flag, FlagKind, Patient, Severity
from tracker.services.flag_insert import NewFact
from tracker.services.flags import NewFlag, raise_flags

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
INDEX = reverse("admin:index")


def problem(patient, kind: str, severity: int, *, hours: int = 0, facts: int = 1, title: str = "", streak=None) -> Flag:
    """A problem as a sweep raises it (through ``raise_flags``), with ``facts`` facts behind it."""
    when = T0 + dt.timedelta(hours=hours)
    key = f"{kind}:patient:{patient.pk}:{hours}"
    raise_flags(
        [
            NewFlag(
                patient_id=patient.pk,
                kind=kind,
                severity=severity,
                dedup_key=key,
                message=f"{kind} for {patient.given_name}.",
                action="Look at it.",
                raised_at=when,
                title=title,
                streak=streak,
                facts=tuple(NewFact(f"fact:{n}", f"fact {n}", when + dt.timedelta(days=n)) for n in range(facts)),
            )
        ]
    )
    return Flag.objects.get(dedup_key=key, status=Flag.Status.OPEN)


def rows(response) -> list[str]:
    return [row.patient.record_number for row in response.context["rows"]]


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


@pytest.fixture
def ward(clinic):
    return {
        name: factories.PatientFactory(clinic=clinic, record_number=f"T-{name}", given_name=name.title())
        for name in ("missed", "severe", "repeated", "suicidal", "goodnews")
    }


class TestRanking:
    def test_one_row_per_patient_most_important_first(self, north, ward, other_patient):
        # Oldest first would put the single missed dose on top; triage puts it last.
        problem(ward["missed"], FlagKind.DOSE_MISSED, Severity.WARNING, hours=0, facts=1, title="Sertraline 50 mg")
        problem(ward["missed"], FlagKind.SE_CHECKIN_OVERDUE, Severity.INFO, hours=1)
        problem(ward["repeated"], FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, hours=2, facts=4, streak=4)
        problem(ward["severe"], FlagKind.SCALE_WORSENING_SEVERE, Severity.URGENT, hours=30)
        problem(ward["suicidal"], FlagKind.SCALE_SUICIDALITY, Severity.CRITICAL, hours=40)
        problem(other_patient, FlagKind.SCALE_SUICIDALITY, Severity.CRITICAL, hours=0)

        response = north.get(INDEX)

        # Critical first; among the urgent, worsening into the severe band outranks missed doses
        # (clinical.TRIAGE_PRIORITY), although the missed doses waited longer.
        assert rows(response) == ["T-suicidal", "T-severe", "T-repeated", "T-missed"]
        assert clinical.triage_priority(FlagKind.SCALE_WORSENING_SEVERE) > clinical.triage_priority(
            FlagKind.DOSE_MISSED_REPEATED
        )
        missed_row = response.context["rows"][-1]
        assert [f.kind for f in missed_row.flags] == [FlagKind.DOSE_MISSED, FlagKind.SE_CHECKIN_OVERDUE]
        content = response.content.decode()
        assert other_patient.record_number not in content
        assert content.count('class="patient-row"') == 4

    def test_the_clinic_can_reorder_within_a_severity(self, north, ward, settings):
        problem(ward["repeated"], FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, hours=2)
        problem(ward["severe"], FlagKind.SCALE_WORSENING_SEVERE, Severity.URGENT, hours=1)
        settings.TRACKER_CLINICAL_OVERRIDES = {
            "TRIAGE_PRIORITY": {**clinical.DEFAULTS["TRIAGE_PRIORITY"], "dose.missed_repeated": 99}
        }
        problem(ward["repeated"], FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, hours=3)  # raised under the new table
        assert rows(north.get(INDEX))[0] == "T-repeated"

    def test_the_row_says_each_problem_in_words(self, north, ward):
        problem(
            ward["missed"], FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, facts=5, streak=3, title="Sertraline 50 mg"
        )
        problem(
            ward["missed"],
            FlagKind.SCALE_WORSENING_SEVERE,
            Severity.URGENT,
            hours=1,
            title="PHQ-9 20 (severe), +8 from baseline",
        )
        response = north.get(INDEX)
        (row,) = response.context["rows"]
        assert row.headlines == [
            "PHQ-9 20 (severe), +8 from baseline",
            "Sertraline 50 mg: 5 doses missed since 01 Jun, 3 in a row",
        ]
        content = response.content.decode()
        assert "Sertraline 50 mg: 5 doses missed since 01 Jun, 3 in a row" in content
        # The row opens in place to the flags behind it, without leaving the page.
        assert "<details>" in content and "The 2 flags behind this row" in content

    def test_good_news_is_not_a_to_do(self, north, ward):
        problem(ward["goodnews"], FlagKind.SCALE_RESPONSE, Severity.INFO)
        problem(ward["goodnews"], FlagKind.SCALE_REMISSION, Severity.INFO, hours=1)
        problem(ward["missed"], FlagKind.DOSE_MISSED, Severity.WARNING)
        response = north.get(INDEX)
        assert rows(response) == ["T-missed"]
        assert response.context["good_news_total"] == 2
        assert response.context["severity_counts"][-1] == ("Info", Severity.INFO, 0)
        assert rows(north.get(INDEX, {"good_news": "on"})) == ["T-missed", "T-goodnews"]
        flags_view = north.get(INDEX, {"view": "flags"}).context["flags"]
        assert [f.kind for f in flags_view] == [FlagKind.DOSE_MISSED]

    def test_filters_narrow_the_rows(self, north, ward, clinician):
        problem(ward["missed"], FlagKind.DOSE_MISSED, Severity.WARNING)
        problem(ward["severe"], FlagKind.SCALE_WORSENING_SEVERE, Severity.URGENT)
        assert rows(north.get(INDEX, {"kind": FlagKind.DOSE_MISSED})) == ["T-missed"]
        assert rows(north.get(INDEX, {"q": "severe"})) == ["T-severe"]
        assert rows(north.get(INDEX, {"assigned": clinician.pk})) == []

    def test_a_page_holds_whole_patients_and_links_to_the_next(self, north, clinic, monkeypatch):
        monkeypatch.setattr("tracker.admin.worklist.TRIAGE_PAGE_SIZE", 2)
        for i in range(3):
            person = factories.PatientFactory(clinic=clinic, record_number=f"P-{i}")
            problem(person, FlagKind.DOSE_MISSED, Severity.WARNING, hours=i)
            problem(person, FlagKind.SE_CHECKIN_OVERDUE, Severity.INFO, hours=i)
        first = north.get(INDEX)
        assert rows(first) == ["P-0", "P-1"]
        assert all(len(row.flags) == 2 for row in first.context["rows"])
        assert 'href="?page=2">Next</a>' in first.content.decode()
        assert rows(north.get(INDEX, {"page": 2})) == ["P-2"]


def row_url(patient: Patient) -> str:
    return reverse("admin:tracker_flag_patient", args=[patient.pk])


class TestActOnThePatient:
    def test_acknowledge_the_row_acknowledges_each_open_flag(self, north, patient, clinician):
        flags = [problem(patient, FlagKind.DOSE_MISSED, Severity.WARNING, hours=h) for h in (0, 1)]
        response = north.post(row_url(patient), {"action": "acknowledge", "flag": [f.pk for f in flags]})
        assert response.status_code == 302
        assert texts(response) == [f"Acknowledged 2 flags for {patient}."]
        for flag in flags:
            flag.refresh_from_db()
            assert (flag.status, flag.acknowledged_by) == (Flag.Status.ACKNOWLEDGED, clinician.user)

    def test_resolve_the_row_keeps_the_note_on_each_flag(self, north, patient, clinician):
        urgent = problem(patient, FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT)
        warning = problem(patient, FlagKind.SE_CHECKIN_OVERDUE, Severity.INFO, hours=1)
        note = "Phoned: back on sertraline since Monday, check-in done on paper."
        north.post(row_url(patient), {"action": "resolve", "note": note, "flag": [urgent.pk, warning.pk]})
        for flag in (urgent, warning):
            flag.refresh_from_db()
            assert (flag.status, flag.resolved_by, flag.resolution_note) == (Flag.Status.RESOLVED, clinician.user, note)
            assert flag.history.latest().history_user == clinician.user

    def test_resolving_a_row_with_an_urgent_flag_needs_a_note_and_changes_nothing_without(self, north, patient):
        urgent = problem(patient, FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT)
        warning = problem(patient, FlagKind.DOSE_MISSED, Severity.WARNING, hours=1)
        response = north.post(row_url(patient), {"action": "resolve", "note": "  ", "flag": [urgent.pk, warning.pk]})
        assert texts(response) == [
            f"{patient}: nothing was changed. A note is required: this patient has an urgent flag."
        ]
        assert set(Flag.objects.values_list("status", flat=True)) == {Flag.Status.OPEN}

    def test_a_row_of_warnings_resolves_without_a_note(self, north, patient):
        warning = problem(patient, FlagKind.DOSE_MISSED, Severity.WARNING)
        north.post(row_url(patient), {"action": "resolve", "flag": [warning.pk]})
        warning.refresh_from_db()
        assert warning.status == Flag.Status.RESOLVED

    def test_a_flag_raised_after_the_page_was_drawn_is_not_closed_unseen(self, north, patient):
        seen = problem(patient, FlagKind.DOSE_MISSED, Severity.WARNING)
        unseen = problem(patient, FlagKind.SCALE_SUICIDALITY, Severity.CRITICAL, hours=1)
        north.post(row_url(patient), {"action": "resolve", "note": "Spoke to them.", "flag": [seen.pk]})
        unseen.refresh_from_db()
        assert unseen.status == Flag.Status.OPEN

    def test_another_clinics_patient_cannot_be_acted_on(self, north, other_patient):
        theirs = problem(other_patient, FlagKind.DOSE_MISSED, Severity.WARNING)
        response = north.post(row_url(other_patient), {"action": "resolve", "note": "x", "flag": [theirs.pk]})
        assert texts(response) == ["This patient's flags were resolved meanwhile: there is nothing left to act on."]
        theirs.refresh_from_db()
        assert theirs.status == Flag.Status.OPEN

    def test_a_viewer_without_change_permission_gets_403(self, client, clinic, patient):
        flag = problem(patient, FlagKind.DOSE_MISSED, Severity.WARNING)
        viewer = factories.UserFactory(username="viewer", is_staff=True)
        factories.ClinicianFactory(clinic=clinic, user=viewer)
        viewer.user_permissions.clear()
        viewer.groups.clear()
        client.force_login(viewer)
        assert client.post(row_url(patient), {"action": "resolve", "flag": [flag.pk]}).status_code == 403


@pytest.mark.parametrize("patients", [3, 30])
def test_triage_query_count_does_not_grow_with_patients(client, clinic, clinician, patients, django_assert_num_queries):
    for i in range(patients):
        person = factories.PatientFactory(clinic=clinic, record_number=f"Q-{i}")
        problem(person, FlagKind.DOSE_MISSED, Severity.WARNING, hours=i)
        problem(person, FlagKind.SE_CHECKIN_OVERDUE, Severity.INFO, hours=i)
    client.force_login(clinician.user)
    # session; user; clinic membership; own permissions; group permissions; active clinicians;
    # the page of patients ranked; their open flags; counts by severity; patients with work;
    # good-news count.
    with django_assert_num_queries(11):
        response = client.get(INDEX)
    assert len(response.context["rows"]) == patients


def test_the_demo_after_its_first_sweep_is_one_row_per_patient_worst_first(client):
    call_command("seed_demo", stdout=StringIO())
    call_command("run_sweeps", stdout=StringIO())
    prescriber = Clinician.objects.filter(role=Clinician.Role.PRESCRIBER).select_related("user").first()
    client.force_login(prescriber.user)
    response = client.get(INDEX)
    listed = response.context["rows"]
    flagged = Flag.objects.exclude(status=Flag.Status.RESOLVED).values("patient").distinct().count()
    assert 0 < len(listed) <= flagged <= Patient.objects.count()
    assert len({row.patient.pk for row in listed}) == len(listed)
    ranks = [(-row.top.severity, -row.top.priority, row.top.raised_at) for row in listed]
    assert ranks == sorted(ranks)
    # The three most urgent: the outside-clinic esketamine report (critical), the PHQ-9 item 9
    # answer and the severe worsening (both urgent, in the clinical priority's order).
    assert [(row.patient.record_number, row.top.kind) for row in listed[:3]] == [
        ("RVP-0016", FlagKind.ESK_OUTSIDE_CLINIC),
        ("RVP-0003", FlagKind.SCALE_SUICIDALITY),
        ("RVP-0006", FlagKind.SCALE_WORSENING_SEVERE),
    ]
    good_news = clinical.get("GOOD_NEWS_KINDS")
    assert not [f for row in listed for f in row.flags if f.kind in good_news]


def test_the_flag_page_shows_the_facts_and_growth_not_the_internals(north, patient):
    flag = problem(patient, FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, facts=3, streak=3, title="Sertraline 50 mg")
    content = north.get(reverse("admin:tracker_flag_change", args=[flag.pk])).content.decode()
    assert flag.dedup_key not in content
    assert "Deduplication key" not in content and "Dedup key" not in content
    assert "Facts behind this flag" in content
    assert all(f"fact {n}" in content for n in range(3))
    assert "How it grew" in content


def test_the_api_gives_the_problem_and_the_facts_behind_it(clinician, patient):
    from rest_framework.test import APIClient

    flag = problem(patient, FlagKind.DOSE_MISSED_REPEATED, Severity.URGENT, facts=2, streak=2, title="Sertraline 50 mg")
    client = APIClient()
    client.force_authenticate(clinician.user)
    body = client.get(f"/api/flags/{flag.pk}/").json()
    assert (body["title"], body["occurrences"], body["streak"]) == ("Sertraline 50 mg", 2, 2)
    assert [fact["message"] for fact in body["facts"]] == ["fact 0", "fact 1"]
    assert "dedup_key" not in body
