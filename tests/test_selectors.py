"""Course summaries: week of treatment and per-instrument outcomes from the course baseline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.dosing import at, daily_course
from tests.symptoms import phq9
from tracker.selectors import course_summaries
from tracker.services.prescriptions import change_dose

pytestmark = pytest.mark.django_db


def test_course_summary_gives_weeks_and_response(patient, clinician, django_assert_num_queries):
    rx = daily_course(patient, clinician, start="2026-06-01")
    change_dose(
        prescription=rx,
        new_dose=Decimal("100"),
        effective_date=dt.date(2026, 6, 15),
        reason="Titration",
        prescriber=clinician,
        now=at("2026-06-14T12:00"),
    )
    phq9(patient, "2026-05-28T09:00", 20)
    phq9(patient, "2026-06-28T09:00", 9)
    with django_assert_num_queries(2):  # prescriptions with drugs; scores
        (summary,) = course_summaries(patient, today=dt.date(2026, 6, 29))
    assert [v.dose for v in summary.course.versions] == [Decimal("50"), Decimal("100")]
    assert (summary.week, summary.week_at_dose) == (5, 3)
    phq = summary.outcomes["phq9"]
    assert (phq.baseline.total, phq.latest.total, phq.response, phq.remission) == (20, 9, True, False)
    assert round(phq.reduction, 2) == 0.55
