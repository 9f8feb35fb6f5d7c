"""Symptom-score flags (clinical-reference §4): worsening, response, remission, not improving.

Two passes, each a fixed number of queries per batch of patients:
1. New questionnaires are claimed once (``evaluated_at``) and judged against the
   patient's baseline and previous score. FIBSER check-ins go to the side-effect rules.
2. Every active antidepressant course is checked for too little improvement by day 28
   and day 56 at an adequate, stable dose.
Flags are never closed by a later, better score: a clinician resolves them.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from tracker import clinical, courses
from tracker.courses import Course, Score
from tracker.models import Assessment, FlagKind, Severity
from tracker.rules import loaders, side_effects
from tracker.rules.base import SweepResult, in_batches
from tracker.services.flags import NewFlag, build_flag, raise_new_flags

BATCH_SIZE = 2000
TRACKED = ("phq9", "madrs", "gad7")
NAMES = {"phq9": "PHQ-9", "madrs": "MADRS", "gad7": "GAD-7"}


def course_for(patient_courses: list[Course], day: dt.date) -> Course | None:
    """The antidepressant course a score on ``day`` belongs to: the latest one under way then."""
    window = dt.timedelta(days=clinical.get("BASELINE_DAYS_BEFORE"))
    under_way = [c for c in patient_courses if c.start_date - window <= day]
    return under_way[-1] if under_way else None


def worsening_reasons(score: Score, previous: Score | None, base: Score | None) -> list[str]:
    """§4 worsening: up ≥ 5 from baseline or from the previous score, or into the severe band."""
    rise = clinical.get("WORSENING_POINTS")
    severe = clinical.get("PHQ9_SEVERE_FROM")
    reasons = []
    if base is not None and score.total - base.total >= rise:
        reasons.append(f"up {score.total - base.total} points from the baseline of {base.total}")
    if previous is not None and previous != base and score.total - previous.total >= rise:
        reasons.append(f"up {score.total - previous.total} points from the previous score of {previous.total}")
    if score.total >= severe and (previous is None or previous.total < severe):
        reasons.append("now in the severe band")
    return reasons


def judge_score(score: Score, history: list[Score], course: Course | None, zone: ZoneInfo) -> list[NewFlag]:
    """Flags for one new score, given the patient's scores and the course it belongs to."""
    name = NAMES[score.instrument]
    earlier = [s for s in history if s.instrument == score.instrument and s.completed_at < score.completed_at]
    previous = earlier[-1] if earlier else None
    base = courses.baseline([*earlier, score], course.start_date, zone) if course else None
    if base is not None and base.id == score.id:
        base = None  # this score is the course's baseline: nothing to compare with yet
    common = {
        "patient": score.patient_id,
        "raised_at": score.completed_at,
        "subject_type": ContentType.objects.get_for_model(Assessment),
        "subject_id": score.id,
    }
    on = f"{score.completed_at.astimezone(zone):%d %b %Y}"
    flags: list[NewFlag] = []
    if score.instrument == "phq9" and (reasons := worsening_reasons(score, previous, base)):
        flags.append(
            build_flag(
                kind=FlagKind.SCALE_WORSENING,
                severity=Severity.WARNING,
                dedup_key=f"{FlagKind.SCALE_WORSENING}:assessment:{score.id}",
                message=f"{name} {score.total} on {on}: " + "; ".join(reasons) + ".",
                action="Review the course with the patient: symptoms are worse than before.",
                **common,
            )
        )
    if course is None or base is None:
        return flags
    drug = course.current.drug_display
    root = course.versions[0].id
    if courses.is_response(base.total, score.total):
        flags.append(
            build_flag(
                kind=FlagKind.SCALE_RESPONSE,
                severity=Severity.INFO,
                dedup_key=f"{FlagKind.SCALE_RESPONSE}:course:{root}:{score.instrument}",
                message=f"{name} response on {drug}: {base.total} at baseline, {score.total} on {on}.",
                action="No action needed now; keep the dose that brought the response under review.",
                **common,
            )
        )
    if courses.is_remission(score.instrument, score.total):
        flags.append(
            build_flag(
                kind=FlagKind.SCALE_REMISSION,
                severity=Severity.INFO,
                dedup_key=f"{FlagKind.SCALE_REMISSION}:course:{root}:{score.instrument}",
                message=f"{name} remission on {drug}: {score.total} on {on} (baseline {base.total}).",
                action="Discuss a relapse-prevention plan with the patient.",
                **common,
            )
        )
    return flags


def _new_scores(now: dt.datetime, batch_size: int) -> tuple[int, int]:
    """Pass 1, one batch: claim new questionnaires and raise their flags. (claimed, raised)"""
    with transaction.atomic():
        ids = loaders.claim("tracker_assessment", "completed_at", now, batch_size)
        if not ids:
            return 0, 0
        claimed = list(Assessment.objects.filter(pk__in=ids).values_list("id", "patient_id", "instrument"))
        patient_ids = {p for _, p, _ in claimed}
        people = loaders.patients(patient_ids)
        history = loaders.scores_by_patient(patient_ids, TRACKED)
        patient_courses = loaders.courses_by_patient(patient_ids, antidepressants_only=True)
        by_id = {s.id: s for scores in history.values() for s in scores}
        flags: list[NewFlag] = []
        for pk, patient_id, instrument in claimed:
            if instrument not in TRACKED:
                continue
            score = by_id[pk]
            zone = people[patient_id].zone
            course = course_for(patient_courses.get(patient_id, []), score.completed_at.astimezone(zone).date())
            flags.extend(judge_score(score, history[patient_id], course, zone))
        fibser = [pk for pk, _, instrument in claimed if instrument == "fibser"]
        flags.extend(side_effects.burden_flags(fibser))
        return len(ids), raise_new_flags(flags)


def not_improving_flags(course: Course, scores: list[Score], today: dt.date, zone: ZoneInfo) -> list[NewFlag]:
    """§4 not_improving: < 20 % PHQ-9 reduction by day 28, < 50 % by day 56, at an adequate stable dose."""
    current = course.current
    if not course.is_active or current.daily_dose < current.usual_min:
        return []
    phq = [s for s in scores if s.instrument == "phq9"]
    base = courses.baseline(phq, course.start_date, zone)
    if base is None:
        return []
    flags = []
    for day, minimum in clinical.get("NOT_IMPROVING_CHECKPOINTS"):
        checkpoint = current.start_date + dt.timedelta(days=day)
        if today < checkpoint:
            continue
        # The latest score from the week before the checkpoint onwards.
        recent = [s for s in phq if s.completed_at.astimezone(zone).date() >= checkpoint - dt.timedelta(days=7)]
        if not recent or recent[-1].id == base.id:
            continue
        latest = recent[-1]
        change = courses.reduction(base.total, latest.total)
        if change is None or change >= minimum:
            continue
        flags.append(
            build_flag(
                patient=current.patient_id,
                kind=FlagKind.SCALE_NOT_IMPROVING,
                severity=Severity.WARNING,
                dedup_key=f"{FlagKind.SCALE_NOT_IMPROVING}:rx:{current.id}:day{day}",
                message=(
                    f"PHQ-9 {latest.total} after {day} days on {current.drug_display} "
                    f"{current.daily_dose.normalize():f} {current.dose_unit} a day (baseline {base.total}): "
                    f"{max(change, 0):.0%} better, below the {minimum:.0%} expected by day {day}."
                ),
                action="Consider a change of treatment: optimise the dose or switch (clinician's judgement).",
                raised_at=dt.datetime.combine(checkpoint, dt.time(0), tzinfo=zone),
                subject_type=ContentType.objects.get_for_model(Assessment),
                subject_id=latest.id,
            )
        )
    return flags


def _checkpoints(now: dt.datetime) -> int:
    """Pass 2: every active antidepressant course, a chunk of patients at a time."""
    raised = 0
    for patient_ids in loaders.active_patient_ids_in_chunks():
        people = loaders.patients(patient_ids)
        patient_courses = loaders.courses_by_patient(patient_ids, antidepressants_only=True)
        scores = loaders.scores_by_patient(list(patient_courses), ("phq9",))
        flags: list[NewFlag] = []
        for patient_id, own in patient_courses.items():
            zone = people[patient_id].zone
            today = now.astimezone(zone).date()
            for course in own:
                flags.extend(not_improving_flags(course, scores.get(patient_id, []), today, zone))
        raised += raise_new_flags(flags)
    return raised


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """New questionnaires, then course checkpoints; see the module docstring."""
    examined, raised = in_batches(lambda size: _new_scores(now, size), batch_size)
    raised += _checkpoints(now)
    return SweepResult(name="symptoms", examined=examined, flags_raised=raised)
