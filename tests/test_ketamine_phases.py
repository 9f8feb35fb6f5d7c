"""Esketamine phases and IV ketamine series generate the planned sessions of clinical-reference §1, §2."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.dosing import at
from tests.test_ketamine_sessions import esketamine_course, ketamine_course
from tracker import scheduling
from tracker.esketamine import ketamine_series
from tracker.models import DoseSchedule, PlannedDose

pytestmark = pytest.mark.django_db


def session_days(rx, horizon_days: int = 100) -> list[str]:
    scheduling.extend_horizon(now=at("2026-05-31T00:00"), horizon_days=horizon_days)
    return [f"{d:%a %d %b}" for d in PlannedDose.objects.filter(prescription=rx).values_list("local_date", flat=True)]


def test_esketamine_phases_twice_weekly_then_weekly_then_every_two_weeks(patient, clinician):
    rx = esketamine_course(patient, clinician, start="2026-06-01")  # a Monday
    schedules = list(rx.schedules.order_by("start_date"))
    assert [(s.phase, s.kind, s.start_date, s.end_date) for s in schedules] == [
        ("induction", DoseSchedule.Kind.WEEKDAYS, dt.date(2026, 6, 1), dt.date(2026, 6, 28)),
        ("maintenance", DoseSchedule.Kind.WEEKDAYS, dt.date(2026, 6, 29), dt.date(2026, 7, 26)),
        ("continuation", DoseSchedule.Kind.EVERY_N_DAYS, dt.date(2026, 7, 27), None),
    ]
    assert session_days(rx, horizon_days=80) == [
        # Weeks 1–4: Monday and Thursday.
        "Mon 01 Jun", "Thu 04 Jun", "Mon 08 Jun", "Thu 11 Jun",
        "Mon 15 Jun", "Thu 18 Jun", "Mon 22 Jun", "Thu 25 Jun",
        # Weeks 5–8: weekly.
        "Mon 29 Jun", "Mon 06 Jul", "Mon 13 Jul", "Mon 20 Jul",
        # Week 9 on: every two weeks.
        "Mon 27 Jul", "Mon 10 Aug",
    ]  # fmt: skip
    first = PlannedDose.objects.filter(prescription=rx).first()
    assert (first.due_at, first.deadline - first.due_at) == (at("2026-06-01T09:00"), dt.timedelta(hours=24))


def test_esketamine_weekly_continuation_is_the_clinicians_choice(patient, clinician):
    rx = esketamine_course(patient, clinician, continuation_every_weeks=1)
    assert session_days(rx, horizon_days=72)[-3:] == ["Mon 27 Jul", "Mon 03 Aug", "Mon 10 Aug"]


def test_ketamine_series_is_six_infusions_over_two_weeks(patient, clinician):
    rx = ketamine_course(patient, clinician)
    assert session_days(rx) == [
        "Mon 01 Jun", "Wed 03 Jun", "Fri 05 Jun", "Mon 08 Jun", "Wed 10 Jun", "Fri 12 Jun",
    ]  # fmt: skip


def test_ketamine_series_twice_weekly_takes_three_weeks():
    (spec,) = ketamine_series(start_date=dt.date(2026, 6, 1), weekdays=(0, 3))
    assert (spec.weekdays, spec.end_date, spec.phase) == ((0, 3), dt.date(2026, 6, 18), "induction")
