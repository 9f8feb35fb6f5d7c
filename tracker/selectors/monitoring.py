"""What monitoring is due next (§5 schedules), for one patient or a page of them.

The schedules and their date arithmetic are ``tracker.monitoring``; this module finds what
they run on (each active course's start and dose increases, from the prescription versions,
and the measurements on record) and answers, per patient and schedule, the measurement due
next. It reads a fixed number of queries whatever the number of patients: the caseload, the
timeline, the overdue sweep and the services that resolve its flags all read it here, so
they cannot disagree on what is due.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import CharField, Value

from tracker.courses import Course, Score
from tracker.models import Assessment, ClinicalMeasurement, Patient, WeightMeasurement
from tracker.monitoring import Schedule, next_due, schedule_windows
from tracker.monitoring import schedules as schedules_named

FIBSER = "fibser"
WEIGHT = "weight"

# How a clinician names what a schedule asks for (the schedules name measures by their code).
SCHEDULE_TITLES = {
    "antipsychotic_weight": "Weight (BMI)",
    "antipsychotic_bp_glucose": "Blood pressure and fasting glucose",
    "antipsychotic_lipids": "Lipid panel",
    "stimulant_bp_pulse": "Blood pressure and pulse",
    "fibser": "FIBSER side-effect rating",
}


def measure_label(measure: str) -> str:
    """'Weight', 'Fasting glucose', 'FIBSER': one measure as the forms name it."""
    if measure == WEIGHT:
        return "Weight"
    if measure == FIBSER:
        return "FIBSER"
    return ClinicalMeasurement.Kind(measure).label


@dataclass(frozen=True)
class ScheduleDue:
    """What one schedule asks for next: the earliest due date of its measures not yet fulfilled.

    ``measures`` are those still owed for that date (a BP taken without its glucose leaves
    the glucose); ``drug`` names the course the schedule follows.
    """

    schedule: str
    what: str  # "Lipid panel", or only "Fasting glucose" when the BP of that date is in
    due_on: dt.date
    measures: tuple[str, ...]
    drug: str
    overdue: bool


def schedules_for(course: Course) -> list[Schedule]:
    """The schedules an active course is under, by its drug class."""
    if not course.is_active:
        return []
    return [s for s in schedules_named().values() if course.current.drug_class in s.classes]


def followed_schedules(courses: Sequence[Course]) -> list[tuple[Course, Schedule]]:
    """Each schedule the patient is under, with the one course it follows.

    Two active courses under one schedule (aripiprazole, then quetiapine added) are followed
    by the earlier-started one: §5's schedules run from the start of treatment of the class,
    and the antipsychotic ones do not restart at a change, so a second drug of the class is
    not a new baseline. One course per schedule also keeps one fact per missed date. The
    caseload (``schedule_dues``) and the sweep (``schedule_missed``) both call this, so they
    cannot disagree on which dates are owed.
    """
    following: dict[str, tuple[Course, Schedule]] = {}
    for course in sorted(courses, key=lambda c: c.start_date):
        for schedule in schedules_for(course):
            following.setdefault(schedule.name, (course, schedule))
    return list(following.values())


def measures_needed(courses: Iterable[Course]) -> set[str]:
    return {m for course in courses for s in schedules_for(course) for m in s.measures}


def measured_dates(
    zones: Mapping[int, ZoneInfo],
    needed: Mapping[int, Collection[str]],
    *,
    fibser_scores: Mapping[int, Sequence[Score]] | None = None,
) -> dict[int, dict[str, list[dt.date]]]:
    """Per patient and measure, the local days it was measured (current rows only): one query.

    ``needed`` says which measures of which patients to read; nothing needed, no query.
    Callers that loaded the FIBSER scores already pass them, and the assessments are not read again.
    """
    found: dict[int, dict[str, list[dt.date]]] = defaultdict(lambda: defaultdict(list))
    kinds_by_patient = {pid: set(measures) for pid, measures in needed.items() if measures}
    if fibser_scores is not None:
        for pid, scores in fibser_scores.items():
            zone = zones.get(pid)
            if zone is None:
                continue
            for s in scores:
                if s.instrument == FIBSER:
                    found[pid][FIBSER].append(s.completed_at.astimezone(zone).date())
        for measures in kinds_by_patient.values():
            measures.discard(FIBSER)
    queries = []
    clinical_kinds = {m for ms in kinds_by_patient.values() for m in ms} - {WEIGHT, FIBSER}
    text = CharField()
    if clinical_kinds:
        ids = [pid for pid, ms in kinds_by_patient.items() if ms & clinical_kinds]
        queries.append(
            ClinicalMeasurement.objects.current()
            .filter(patient_id__in=ids, kind__in=sorted(clinical_kinds))
            .values_list("patient_id", "kind", "measured_at")
            .order_by()
        )
    if weight_ids := [pid for pid, ms in kinds_by_patient.items() if WEIGHT in ms]:
        queries.append(
            WeightMeasurement.objects.current()
            .filter(patient_id__in=weight_ids)
            .annotate(measure=Value(WEIGHT, output_field=text))
            .values_list("patient_id", "measure", "measured_at")
            .order_by()
        )
    if fibser_ids := [pid for pid, ms in kinds_by_patient.items() if FIBSER in ms]:
        queries.append(
            Assessment.objects.current()
            .filter(patient_id__in=fibser_ids, instrument=FIBSER)
            .annotate(measure=Value(FIBSER, output_field=text))
            .values_list("patient_id", "measure", "completed_at")
            .order_by()
        )
    if queries:
        rows = queries[0].union(*queries[1:], all=True) if len(queries) > 1 else queries[0]
        for pid, measure, when in rows:
            found[pid][measure].append(when.astimezone(zones[pid]).date())
    return {pid: dict(by_measure) for pid, by_measure in found.items()}


def dose_increases(course: Course) -> list[dt.date]:
    """The days the course's dose went up: where a restarting schedule starts again."""
    return [after.start_date for _before, after in course.increases()]


def owed_what(schedule: Schedule, measures: Sequence[str]) -> str:
    """The schedule's title when all its measures are owed, else the owed ones by name."""
    if set(measures) == set(schedule.measures):
        return SCHEDULE_TITLES.get(schedule.name, schedule.name)
    return " and ".join(measure_label(m) for m in measures)


def schedule_dues(
    courses: Sequence[Course], measured: Mapping[str, Sequence[dt.date]], today: dt.date
) -> list[ScheduleDue]:
    """Each schedule's next due item for one patient, earliest first.

    A schedule followed by two courses at once (two antipsychotics) asks for what the
    course it follows asks (``followed_schedules``), as the overdue sweep does.
    """
    dues: list[ScheduleDue] = []
    for course, schedule in followed_schedules(courses):
        increases = dose_increases(course)
        owed: dict[dt.date, list[str]] = defaultdict(list)
        for measure in schedule.measures:
            item = next_due(
                schedule,
                measure,
                start_date=course.start_date,
                dose_increases=increases,
                measured_dates=measured.get(measure, ()),
                today=today,
            )
            if item is not None:
                owed[item.due_date].append(measure)
        if not owed:
            continue
        due_on = min(owed)
        measures = tuple(owed[due_on])
        dues.append(
            ScheduleDue(
                schedule=schedule.name,
                what=owed_what(schedule, measures),
                due_on=due_on,
                measures=measures,
                drug=course.current.drug_display,
                overdue=due_on < today,
            )
        )
    return sorted(dues, key=lambda d: (d.due_on, d.schedule))


@dataclass(frozen=True)
class MissedDue:
    """One due date of one schedule whose window has closed with a measure still owed.

    ``last_day`` is the last day it could have been recorded (``tracker.monitoring.DueWindow``);
    the overdue sweep raises one fact per missed date.
    """

    schedule: str
    what: str
    due_on: dt.date
    last_day: dt.date
    measures: tuple[str, ...]
    drug: str


def schedule_missed(
    courses: Sequence[Course], measured: Mapping[str, Sequence[dt.date]], today: dt.date
) -> list[MissedDue]:
    """Every missed due date of one patient's schedules, oldest first.

    A schedule followed by two courses at once follows one of them (``followed_schedules``),
    so one missed baseline is one fact, not two.
    """
    missed: list[MissedDue] = []
    for course, schedule in followed_schedules(courses):
        windows = schedule_windows(
            schedule, start_date=course.start_date, dose_increases=dose_increases(course), today=today
        )
        owed: dict[dt.date, list[str]] = defaultdict(list)
        last_day: dict[dt.date, dt.date] = {}
        for measure in schedule.measures:
            days = measured.get(measure, ())
            for window in windows:
                if window.missed(days, today):
                    owed[window.due].append(measure)
                    last_day[window.due] = window.last_day
        missed += [
            MissedDue(
                schedule.name,
                owed_what(schedule, owed[due]),
                due,
                last_day[due],
                tuple(owed[due]),
                course.current.drug_display,
            )
            for due in owed
        ]
    return sorted(missed, key=lambda m: (m.due_on, m.schedule))


def _measured(
    zones: Mapping[int, ZoneInfo],
    courses: Mapping[int, Sequence[Course]],
    fibser_scores: Mapping[int, Sequence[Score]] | None,
) -> tuple[dict[int, set[str]], dict[int, dict[str, list[dt.date]]]]:
    needed = {pid: measures_needed(own) for pid, own in courses.items()}
    return needed, measured_dates(zones, needed, fibser_scores=fibser_scores)


def dues_by_patient(
    zones: Mapping[int, ZoneInfo],
    courses: Mapping[int, Sequence[Course]],
    *,
    now: dt.datetime,
    fibser_scores: Mapping[int, Sequence[Score]] | None = None,
) -> dict[int, list[ScheduleDue]]:
    """Set-based: every patient's next due item per schedule, from courses already loaded.

    At most one query (the measurements of the patients under a schedule), none when no
    patient is; with ``fibser_scores`` given, none for an antidepressant-only page either.
    """
    needed, measured = _measured(zones, courses, fibser_scores)
    result: dict[int, list[ScheduleDue]] = {}
    for pid, own in courses.items():
        if not needed.get(pid):
            continue
        today = now.astimezone(zones[pid]).date()
        if dues := schedule_dues(own, measured.get(pid, {}), today):
            result[pid] = dues
    return result


def missed_by_patient(
    zones: Mapping[int, ZoneInfo], courses: Mapping[int, Sequence[Course]], *, now: dt.datetime
) -> dict[int, list[MissedDue]]:
    """Set-based: every patient's missed due dates (current measurements only): at most one query."""
    needed, measured = _measured(zones, courses, None)
    result: dict[int, list[MissedDue]] = {}
    for pid, own in courses.items():
        if not needed.get(pid):
            continue
        if missed := schedule_missed(own, measured.get(pid, {}), now.astimezone(zones[pid]).date()):
            result[pid] = missed
    return result


def patient_dues(patient: Patient, courses: Sequence[Course], *, now: dt.datetime) -> list[ScheduleDue]:
    """One patient's due items (at most one query)."""
    return dues_by_patient({patient.pk: patient.zone}, {patient.pk: courses}, now=now).get(patient.pk, [])
