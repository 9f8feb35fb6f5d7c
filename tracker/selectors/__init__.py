"""Reads that span relations, shaped for pages and exports (few queries, no writes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tracker import courses
from tracker.courses import Course, Outcome
from tracker.models import Patient
from tracker.rules import loaders

OUTCOME_INSTRUMENTS = ("phq9", "gad7", "madrs")


@dataclass(frozen=True)
class CourseSummary:
    """One course at a glance: where it is in time and how the scores have moved."""

    course: Course
    week: int  # week of treatment since the course started (week 1 = first 7 days)
    week_at_dose: int  # week since the last dose change
    outcomes: dict[str, Outcome]  # by instrument, from the course's baseline


def course_summaries(patient: Patient, today: dt.date | None = None) -> list[CourseSummary]:
    """Every course of the patient with its week of treatment and per-instrument outcome (3 queries)."""
    zone = patient.zone
    today = today or dt.datetime.now(dt.UTC).astimezone(zone).date()
    own = loaders.courses_by_patient([patient.pk]).get(patient.pk, [])
    scores = loaders.scores_by_patient([patient.pk], OUTCOME_INSTRUMENTS).get(patient.pk, [])
    summaries = []
    for course in own:
        end = today if course.is_active else max(v.start_date for v in course.versions)
        summaries.append(
            CourseSummary(
                course=course,
                week=course.week_of(end),
                week_at_dose=course.week_of(end, since=course.last_change_date),
                outcomes={i: courses.outcome(i, scores, course.start_date, zone) for i in OUTCOME_INSTRUMENTS},
            )
        )
    return summaries
