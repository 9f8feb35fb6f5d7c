"""Each §5 due date is judged in its own window (issue 18): FIBSER's weeks 2, 4 and 6 (14 days
apart, 7 early days, 7 days' grace) are flagged when their own window closes, a measurement on a
window's last day fulfils that date and not the next, and a weekly cadence keeps its due day.

And "entered in error" reopens: a measurement marked in error (through the admin's action, as a
clinician does it, or the service) no longer fulfils its date, so the next sweep raises the
missed date again, in a new flag when the old one was resolved, or reopened in the open one.

Courses start on a fixed Monday; the sweep and the services are given their ``now``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.dosing import daily_course
from tests.test_admin_scoping import admin_url
from tracker.models import Assessment, Flag, FlagKind
from tracker.monitoring import due_windows, next_due, schedules
from tracker.rules import loaders
from tracker.rules import monitoring as monitoring_rules
from tracker.selectors.monitoring import patient_dues
from tracker.services.assessments import submit_assessment
from tracker.services.measurements import record_measurement, record_weight
from tracker.services.records import mark_entered_in_error

pytestmark = pytest.mark.django_db

START = dt.date(2026, 6, 1)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def at(patient, n: int, hour: int = 12) -> dt.datetime:
    """Day ``n`` of the course at ``hour`` o'clock in the patient's zone."""
    return dt.datetime.combine(day(n), dt.time(hour), tzinfo=patient.zone)


def sweep(patient, n: int) -> None:
    monitoring_rules.sweep(now=at(patient, n))


def facts(patient, schedule: str) -> dict[str, bool]:
    """Each monitoring fact's due date -> whether it is owed (unanswered in an unresolved flag, in any of them)."""
    flags = Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE, dedup_key__endswith=f":{schedule}")
    owed: dict[str, bool] = {}
    for flag in flags:
        for fact in flag.facts.all():
            due = fact.key.rsplit(":", 1)[1]
            owed[due] = owed.get(due, False) or (fact.answered_at is None and flag.status != Flag.Status.RESOLVED)
    return owed


def fibser(patient, n: int, *, now: int | None = None) -> Assessment:
    """A FIBSER completed on day ``n`` (recorded on day ``now``, by default the same day)."""
    return submit_assessment(
        patient=patient,
        instrument="fibser",
        answers=[1, 1, 1],
        source="clinician",
        completed_at=at(patient, n),
        now=at(patient, n if now is None else now, hour=13),
    ).assessment


@pytest.fixture
def sertraline(patient, clinician):
    return daily_course(patient, clinician, name="sertraline", start=START.isoformat())


class TestWindows:
    def test_fibser_windows_end_where_the_next_dates_early_days_begin(self):
        dates = [day(7 * w) for w in (2, 4, 6, 9, 12)]
        windows = due_windows(dates)
        week2, week4, week6, _week9, week12 = windows
        # Week 2 (day 14): from day 7, last day 20 (grace cut to the day before week 4's day 21).
        assert (week2.opens, week2.last_day, week2.closes) == (day(7), day(20), day(21))
        assert (week4.opens, week4.last_day, week4.closes) == (day(21), day(34), day(35))
        # Week 6 (day 42) to week 9 (day 63): the whole 7-day grace fits.
        assert (week6.opens, week6.last_day, week6.closes) == (day(35), day(49), day(56))
        assert (week12.last_day, week12.closes) == (day(91), dt.date.max)
        assert all(w.opens <= w.due <= w.last_day < w.closes for w in windows)

    def test_a_weekly_cadence_keeps_its_due_day(self):
        dates = [day(7 * w) for w in (1, 2, 3, 4)]
        week1, week2, *_ = due_windows(dates)
        # The early margin (7) equals the gap: each date keeps its own day and the six before.
        assert (week1.opens, week1.last_day, week1.closes) == (day(0), day(7), day(8))
        assert (week2.opens, week2.last_day, week2.closes) == (day(8), day(14), day(15))


class TestFibserSweep:
    def test_week_2_missed_is_flagged_when_its_window_closes(self, patient, sertraline):
        sweep(patient, 20)  # week 2's last day: not yet
        assert facts(patient, "fibser") == {}
        sweep(patient, 21)
        assert facts(patient, "fibser") == {day(14).isoformat(): True}
        flag = Flag.objects.get(patient=patient, kind=FlagKind.MONITOR_OVERDUE)
        assert f"was due on {day(14):%d %b %Y}" in flag.message
        assert f"nothing had been recorded by {day(20):%d %b %Y}" in flag.message
        assert flag.raised_at == at(patient, 21, hour=0)

    def test_weeks_2_4_and_6_each_flagged_in_one_flag(self, patient, sertraline):
        for n in (21, 35, 50):
            sweep(patient, n)
        assert facts(patient, "fibser") == {day(d).isoformat(): True for d in (14, 28, 42)}
        (flag,) = Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE)
        assert flag.occurrences == 3

    def test_a_fibser_on_week_2s_last_day_fulfils_week_2_not_week_4(self, patient, sertraline):
        fibser(patient, 20)
        sweep(patient, 21)
        assert facts(patient, "fibser") == {}
        courses = loaders.courses_by_patient([patient.pk])[patient.pk]
        (due,) = patient_dues(patient, courses, now=at(patient, 21))
        assert due.due_on == day(28)  # week 4 is still owed
        sweep(patient, 34)  # week 4's last day
        assert facts(patient, "fibser") == {}
        sweep(patient, 35)
        assert facts(patient, "fibser") == {day(28).isoformat(): True}

    def test_a_late_fibser_answers_the_missed_week_it_stands_for(self, patient, sertraline):
        sweep(patient, 21)
        fibser(patient, 22)  # in week 4's window: fulfils week 4, catches week 2 up
        assert facts(patient, "fibser") == {day(14).isoformat(): False}
        sweep(patient, 35)
        assert facts(patient, "fibser") == {day(14).isoformat(): False}


def test_weekly_cadence_due_day_fulfils_its_own_week_and_a_miss_is_flagged_the_day_after(settings, patient, sertraline):
    weekly = {"classes": ["ssri"], "measures": ["fibser"], "weeks": [1], "then_every_weeks": 1}
    settings.TRACKER_CLINICAL_OVERRIDES = {
        "MONITORING_SCHEDULES": {"fibser": {**weekly, "restart_on_dose_increase": False}}
    }
    plan = schedules()["fibser"]
    # A rating on week 3's own day fulfils week 3: week 4 is what is due next.
    item = next_due(plan, "fibser", start_date=START, measured_dates=[day(21)], today=day(21))
    assert item.due_date == day(28)
    # Week 1 rated, week 2 (day 14) missed: flagged on day 15, not on day 14.
    fibser(patient, 7)
    sweep(patient, 14)
    assert facts(patient, "fibser") == {}
    sweep(patient, 15)
    assert facts(patient, "fibser") == {day(14).isoformat(): True}


class TestEnteredInErrorReopens:
    def test_a_glucose_in_error_makes_the_baseline_overdue_again(self, north, patient, clinician):
        """Service, then the admin's action: resolved by the glucose, flagged again after it is withdrawn."""
        daily_course(patient, clinician, name="aripiprazole", dose="5", start=START.isoformat())
        sweep(patient, 10)
        assert facts(patient, "antipsychotic_bp_glucose") == {START.isoformat(): True}
        record_measurement(
            patient=patient, kind="blood_pressure", value=Decimal("124"), diastolic=Decimal("80"),
            recorded_by=None, measured_at=at(patient, 11), now=at(patient, 11),
        )  # fmt: skip
        glucose = record_measurement(
            patient=patient, kind="fasting_glucose", value=Decimal("92"),
            recorded_by=None, measured_at=at(patient, 11), now=at(patient, 11),
        )  # fmt: skip
        assert facts(patient, "antipsychotic_bp_glucose") == {START.isoformat(): False}
        first = Flag.objects.get(patient=patient, dedup_key__endswith=":antipsychotic_bp_glucose")
        assert first.status == Flag.Status.RESOLVED

        # The clinician marks the glucose in error from the measurements list, as the admin offers it.
        response = north.post(
            admin_url("changelist", "clinicalmeasurement"),
            {"action": "mark_entered_in_error", ACTION_CHECKBOX_NAME: [glucose.pk], "confirm": "1", "reason": "Wrong"},
        )
        assert response.status_code == 302
        glucose.refresh_from_db()
        assert glucose.is_entered_in_error
        courses = loaders.courses_by_patient([patient.pk])[patient.pk]
        due = next(d for d in patient_dues(patient, courses, now=at(patient, 12)) if d.schedule.endswith("glucose"))
        assert (due.due_on, due.measures, due.overdue) == (START, ("fasting_glucose",), True)

        sweep(patient, 12)
        again = Flag.objects.get(
            patient=patient, dedup_key__endswith=":antipsychotic_bp_glucose", status=Flag.Status.OPEN
        )
        assert again.pk != first.pk and [f.key for f in again.facts.all()] == [
            f"monitor:antipsychotic_bp_glucose:{START}"
        ]
        assert again.title.startswith("Fasting glucose (")  # only the glucose is owed: the BP stands
        first.refresh_from_db()
        assert first.status == Flag.Status.RESOLVED  # history is kept as it was
        sweep(patient, 12)  # the next run: nothing twice
        assert Flag.objects.filter(patient=patient, dedup_key__endswith=":antipsychotic_bp_glucose").count() == 2

    def test_a_fibser_in_error_reopens_its_fact_in_the_open_flag(self, patient, clinician, sertraline):
        """Service: a paper FIBSER of week 2 typed in on day 36 answers week 2, not week 4; in error,
        week 2 is owed again in the open flag."""
        sweep(patient, 36)
        assert facts(patient, "fibser") == {day(14).isoformat(): True, day(28).isoformat(): True}
        paper = fibser(patient, 15, now=36)
        assert facts(patient, "fibser") == {day(14).isoformat(): False, day(28).isoformat(): True}
        (flag,) = Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE)
        flag.refresh_from_db()
        assert flag.occurrences == 1

        mark_entered_in_error(record=paper, by=clinician.user, reason="Another patient's form")
        sweep(patient, 37)
        assert facts(patient, "fibser") == {day(14).isoformat(): True, day(28).isoformat(): True}
        flag.refresh_from_db()
        assert flag.status == Flag.Status.OPEN and flag.occurrences == 2
        assert Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE).count() == 1
        reopened = flag.facts.get(key=f"monitor:fibser:{day(14)}")
        assert reopened.answer_note.startswith("Owed again on ") and "entered in error" in reopened.answer_note
        sweep(patient, 38)
        flag.refresh_from_db()
        assert flag.occurrences == 2

    def test_a_weight_in_error_makes_week_4_overdue_again(self, patient, clinician):
        """Service: the late week-4 weight resolves its flag; in error, the next sweep raises week 4 again."""
        daily_course(patient, clinician, name="aripiprazole", dose="5", start=START.isoformat())
        record_weight(patient=patient, weight_kg=Decimal("70"), recorded_by=None, measured_at=at(patient, 0))
        sweep(patient, 36)  # week 4 (day 28): last day 35
        assert facts(patient, "antipsychotic_weight") == {day(28).isoformat(): True}
        late = record_weight(
            patient=patient, weight_kg=Decimal("71"), recorded_by=None, measured_at=at(patient, 37), now=at(patient, 37)
        )
        assert facts(patient, "antipsychotic_weight") == {day(28).isoformat(): False}
        mark_entered_in_error(record=late, by=clinician.user, reason="Scale not zeroed")
        sweep(patient, 38)
        assert facts(patient, "antipsychotic_weight") == {day(28).isoformat(): True}
        assert Flag.objects.filter(patient=patient, dedup_key__endswith=":antipsychotic_weight").count() == 2

    def test_a_clinician_closed_flag_is_not_reopened_without_an_error(self, patient, clinician, sertraline):
        from tracker.services.flags import resolve_flag

        sweep(patient, 21)
        flag = Flag.objects.get(patient=patient, kind=FlagKind.MONITOR_OVERDUE)
        resolve_flag(flag=flag, by=clinician.user, note="Rated by phone, not recorded")
        sweep(patient, 22)
        assert Flag.objects.filter(patient=patient, kind=FlagKind.MONITOR_OVERDUE).count() == 1


@pytest.fixture
def north(client, clinician):
    client.force_login(clinician.user)
    return client


def _paper_fibser(clinic, clinician, number: int) -> Assessment:
    """A sertraline patient whose weeks 2 and 4 were flagged, and a paper week-2 FIBSER that answered week 2."""
    patient = factories.PatientFactory(clinic=clinic, record_number=f"R-{number}")
    daily_course(patient, clinician, name="sertraline", start=START.isoformat())
    sweep(patient, 36)
    return fibser(patient, 15, now=36)


def test_reopening_takes_the_same_statements_for_one_flag_or_two(clinic, clinician):
    """Set-based: the sweep that reopens week 2 in 1 or in 2 patients' flags runs the same statements."""

    def run(patients) -> int:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as queries:
                sweep(patients[0], 37)
            assert all(facts(p, "fibser") == {day(14).isoformat(): True, day(28).isoformat(): True} for p in patients)
            transaction.set_rollback(True)
        return len(queries)

    first, second = _paper_fibser(clinic, clinician, 1), _paper_fibser(clinic, clinician, 2)
    mark_entered_in_error(record=first, by=clinician.user, reason="Another patient's form")
    one = run([first.patient])
    mark_entered_in_error(record=second, by=clinician.user, reason="Another patient's form")
    assert run([first.patient, second.patient]) == one
