"""§5 monitoring schedules as due items (issue 18): the overdue sweep raises one flag per patient
and schedule, a measurement recorded through the admin's "Add measurement" form resolves it,
and the caseload and the timeline show what is due next.

The courses start a fixed number of days before the real clock, because the admin's forms
record measurements at the server's now.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tests.dosing import daily_course
from tests.test_admin_scoping import admin_url
from tracker.models import Flag, FlagKind
from tracker.rules import SWEEPS, loaders
from tracker.rules import monitoring as monitoring_rules
from tracker.selectors.monitoring import patient_dues
from tracker.services.assessments import submit_assessment
from tracker.services.measurements import record_weight
from tracker.services.prescriptions import change_dose

pytestmark = pytest.mark.django_db

CASELOAD = reverse("admin:tracker_patient_caseload")


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def days_ago(n: int) -> dt.date:
    return timezone.now().date() - dt.timedelta(days=n)


def antipsychotic(patient, clinician, started_days_ago: int = 50):
    return daily_course(patient, clinician, name="aripiprazole", dose="5", start=days_ago(started_days_ago).isoformat())


def add_measurement(client, patient, kind: str, value: str, diastolic: str | None = None):
    """Through the admin's form, at the patient's local time now (as a clinician types it)."""
    local = timezone.now().astimezone(patient.zone) - dt.timedelta(minutes=5)
    form = {"patient": patient.pk, "kind": kind, "value": value, "measured_at": local.strftime("%Y-%m-%dT%H:%M")}
    if diastolic:
        form["diastolic"] = diastolic
    url = f"{admin_url('add', 'clinicalmeasurement')}?patient={patient.pk}"
    response = client.post(url, form, follow=True)
    assert response.redirect_chain, response.context["form"].errors
    return response


def monitoring_flags(patient) -> list[Flag]:
    return list(Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE).order_by("id"))


def test_the_sweep_is_registered():
    assert SWEEPS["monitoring"] is monitoring_rules.sweep


def test_overdue_raises_one_flag_per_schedule_and_the_measurement_resolves_it(north, patient, clinician):
    rx = antipsychotic(patient, clinician, started_days_ago=10)
    # Weighed today (day 10): late, but in the baseline weight's own window (until week 4's
    # opens on day 21), so weight is not owed; the baseline BP, glucose and lipids were due
    # 10 days ago, and their window (until week 12's opens) still takes them as baselines.
    record_weight(patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=timezone.now())
    result = monitoring_rules.sweep(now=timezone.now())
    flags = monitoring_flags(patient)
    assert result.flags_raised == 2 == len(flags)
    assert {f.dedup_key.rsplit(":", 1)[1] for f in flags} == {"antipsychotic_bp_glucose", "antipsychotic_lipids"}
    bp_glucose = next(f for f in flags if f.dedup_key.endswith("antipsychotic_bp_glucose"))
    assert bp_glucose.severity == 20 and bp_glucose.occurrences == 1
    assert f"was due on {rx.start_date:%d %b %Y}" in bp_glucose.message
    # Run again: nothing new, no fact twice.
    again = monitoring_rules.sweep(now=timezone.now())
    assert again.flags_raised == 0
    assert [(f.pk, f.facts.count()) for f in monitoring_flags(patient)] == [(f.pk, 1) for f in flags]

    # The BP alone leaves the glucose owed: the flag stays open.
    add_measurement(north, patient, "blood_pressure", "124", "80")
    bp_glucose.refresh_from_db()
    assert bp_glucose.status == Flag.Status.OPEN
    # The glucose fulfils the baseline: resolved by the tracker, with the fact answered.
    add_measurement(north, patient, "fasting_glucose", "92")
    bp_glucose.refresh_from_db()
    assert bp_glucose.status == Flag.Status.RESOLVED and bp_glucose.resolved_by is None
    assert "Resolved automatically" in bp_glucose.resolution_note
    fact = bp_glucose.facts.get()
    assert fact.answered_at is not None and "Fasting glucose recorded" in fact.answer_note
    # The lipids' flag is untouched, and the next sweep does not raise the answered date again.
    assert next(f for f in monitoring_flags(patient) if f.dedup_key.endswith("lipids")).status == Flag.Status.OPEN
    assert monitoring_rules.sweep(now=timezone.now()).flags_raised == 0
    assert not Flag.objects.filter(
        patient=patient, kind=FlagKind.MONITOR_OVERDUE, dedup_key=bp_glucose.dedup_key
    ).exclude(status=Flag.Status.RESOLVED)


def test_a_second_missed_date_folds_into_the_open_flag(patient, clinician):
    antipsychotic(patient, clinician, started_days_ago=70)
    record_weight(
        patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=timezone.now() - dt.timedelta(days=70)
    )
    # Week 4 (42 days ago) missed: judged 30 days ago, one fact.
    monitoring_rules.sweep(now=timezone.now() - dt.timedelta(days=30))
    weight = next(f for f in monitoring_flags(patient) if f.dedup_key.endswith("antipsychotic_weight"))
    assert weight.facts.count() == 1
    # Week 8 (14 days ago) missed as well: the same flag, a second fact.
    assert monitoring_rules.sweep(now=timezone.now()).flags_raised == 0
    weight.refresh_from_db()
    assert weight.facts.count() == 2 and weight.occurrences == 2
    # A weight today fulfils week 8, which stands for week 4: both answered, resolved.
    record_weight(patient=patient, weight_kg=Decimal("71"), recorded_by=None)
    weight.refresh_from_db()
    assert weight.status == Flag.Status.RESOLVED and weight.occurrences == 0


def test_a_fibser_answers_its_overdue_flag(patient, clinician):
    # Week 9's rating (day 63) is past its grace on day 72, before week 12's window opens (day 77).
    daily_course(patient, clinician, name="sertraline", start=days_ago(72).isoformat())
    monitoring_rules.sweep(now=timezone.now())
    (flag,) = [f for f in monitoring_flags(patient) if f.dedup_key.endswith(":fibser")]
    assert "FIBSER" in flag.message
    submit_assessment(patient=patient, instrument="fibser", answers=[1, 1, 1], source="patient")
    flag.refresh_from_db()
    assert flag.status == Flag.Status.RESOLVED


def test_stimulant_bp_and_pulse_due_again_at_a_dose_increase(patient, clinician):
    rx = daily_course(patient, clinician, name="methylphenidate", dose="10", start=days_ago(20).isoformat())
    now = timezone.now()
    courses = loaders.courses_by_patient([patient.pk])[patient.pk]
    (due,) = patient_dues(patient, courses, now=now)
    assert (due.schedule, due.due_on, due.overdue) == ("stimulant_bp_pulse", rx.start_date, True)
    increase = days_ago(2)
    change_dose(
        prescription=rx, new_dose=Decimal("20"), effective_date=increase, reason="titration", prescriber=clinician
    )
    courses = loaders.courses_by_patient([patient.pk])[patient.pk]
    (due,) = patient_dues(patient, courses, now=now)
    assert due.due_on == increase and due.what == "Blood pressure and pulse"


class TestShownNext:
    def test_the_caseload_shows_the_next_measurement_due(self, north, patient, clinician):
        rx = antipsychotic(patient, clinician, started_days_ago=50)
        content = north.get(CASELOAD).content.decode()
        # The baseline BP and glucose (day 0) come before the weekly check-in (day 7).
        since = f"{rx.start_date:%a} {rx.start_date.day} {rx.start_date:%b}"
        assert f"Blood pressure and fasting glucose: overdue since {since}" in content

    def test_the_timeline_lists_what_is_due_next(self, north, patient, clinician):
        rx = antipsychotic(patient, clinician, started_days_ago=50)
        record_weight(patient=patient, weight_kg=Decimal("70"), recorded_by=None)
        content = north.get(reverse("admin:tracker_patient_timeline", args=[patient.pk])).content.decode()
        assert "<h2>Due next</h2>" in content
        assert "Blood pressure and fasting glucose for Aripiprazole:" in content
        assert f"overdue since {rx.start_date:%-d %b %Y}" in content
        assert "Weight (BMI) for Aripiprazole:" in content


def test_the_caseload_query_count_does_not_grow_with_antipsychotic_patients(north, clinic, clinician):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert north.get(CASELOAD).status_code == 200
        return len(queries)

    for i in range(2):
        antipsychotic(factories.PatientFactory(clinic=clinic, record_number=f"A-{i}"), clinician)
    two = count()
    for i in range(2, 5):
        antipsychotic(factories.PatientFactory(clinic=clinic, record_number=f"A-{i}"), clinician)
    assert count() == two


def _under_every_schedule(clinic, clinician, number: int) -> None:
    """A patient on an antipsychotic, a stimulant and an antidepressant, weighed today, so each
    schedule has overdue items and each of the measurement reads (weights, FIBSER) has rows."""
    patient = factories.PatientFactory(clinic=clinic, record_number=f"M-{number}")
    antipsychotic(patient, clinician, started_days_ago=50)
    daily_course(patient, clinician, name="methylphenidate", dose="10", start=days_ago(20).isoformat())
    daily_course(patient, clinician, name="sertraline", start=days_ago(72).isoformat())
    record_weight(patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=timezone.now())


def test_the_sweep_query_count_does_not_grow_with_patients(clinic, clinician):
    """Set-based: N−1 and N patients under every schedule take the same statements, and each
    patient's overdue items are all raised (5 problems: the baseline weight, which today's
    weight does not stand for, BP and glucose, lipids, stimulant BP and pulse, FIBSER)."""

    def run() -> tuple[int, int]:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as queries:
                raised = monitoring_rules.sweep(now=timezone.now()).flags_raised
            transaction.set_rollback(True)
        return len(queries), raised

    for i in range(2):
        _under_every_schedule(clinic, clinician, i)
    two, raised_two = run()
    _under_every_schedule(clinic, clinician, 2)
    three, raised_three = run()
    assert (raised_two, raised_three) == (10, 15)
    assert three == two
