"""Helpers for dose tests: a course with a known plan, judged at explicit instants."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.factories import drug
from tracker.services.prescriptions import ScheduleSpec, prescribe

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    """An aware UTC instant from 'YYYY-MM-DDTHH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def daily_course(patient, clinician, *, name="sertraline", dose="50", times=("08:00",), start="2026-06-01", **spec):
    """A course planned from the day before ``start`` (so every dose from ``start`` exists)."""
    start_date = dt.date.fromisoformat(start)
    return prescribe(
        patient=patient,
        drug=drug(name),
        dose=Decimal(dose),
        start_date=start_date,
        prescriber=clinician,
        schedules=[ScheduleSpec(times_of_day=times, **spec)],
        now=dt.datetime.combine(start_date, dt.time(0), tzinfo=UTC) - dt.timedelta(days=1),
    )
