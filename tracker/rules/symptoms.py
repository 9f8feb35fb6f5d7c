"""Symptom-score flags (clinical-reference §4): worsening, response, remission, not improving.

Each rule is §4's, read exactly: worsening is a PHQ-9 rise of ≥ 5 points from the baseline
or from the previous score, nothing else (a severe first score is not worsening; see
clinical.py); response (≥ 50 % down from baseline) is PHQ-9's only; remission is PHQ-9 < 5
or MADRS ≤ 10. One project rule sits on top, under its own key and flag kind: a worsening
that lands in the severe band is ``scale.worsening_severe`` ([P] WORSENING_SEVERE_BAND_SEVERITY).

Two passes, each a fixed number of queries per batch of patients:
1. New questionnaires are claimed once (``evaluated_at``) and judged against the
   patient's baseline and previous score. FIBSER check-ins go to the side-effect rules.
2. Every active antidepressant course is checked for too little improvement by day 28
   and day 56 at an adequate, stable dose.
Flags are never closed by a later, better score: a clinician resolves them. Successive
worsening scores fold into one open problem per patient and scale that carries the latest.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from tracker import clinical, courses, scales
from tracker.courses import Course, Score
from tracker.models import Assessment, FlagKind, Severity
from tracker.rules import loaders, side_effects
from tracker.rules.base import SweepResult, in_batches
from tracker.services.flags import NewFact, NewFlag, build_flag, raise_flags, raise_new_flags

BATCH_SIZE = 2000
TRACKED = ("phq9", "madrs", "gad7")
NAMES = {"phq9": "PHQ-9", "madrs": "MADRS", "gad7": "GAD-7"}


def course_for(patient_courses: list[Course], day: dt.date) -> Course | None:
    """The antidepressant course a score on ``day`` belongs to: the latest one under way then."""
    window = dt.timedelta(days=clinical.get("BASELINE_DAYS_BEFORE"))
    under_way = [c for c in patient_courses if c.start_date - window <= day]
    return under_way[-1] if under_way else None


def worsening_reasons(score: Score, previous: Score | None, base: Score | None) -> list[str]:
    """§4 worsening, exactly as written: up ≥ 5 from baseline or from the previous score.

    Reaching the severe band is not worsening by itself (a severe baseline is where a
    course starts); it makes a worsening urgent instead ([P] WORSENING_SEVERE_BAND_SEVERITY).
    """
    rise = clinical.get("WORSENING_POINTS")
    reasons = []
    if base is not None and score.total - base.total >= rise:
        reasons.append(f"up {score.total - base.total} points from the baseline of {base.total}")
    if previous is not None and previous != base and score.total - previous.total >= rise:
        reasons.append(f"up {score.total - previous.total} points from the previous score of {previous.total}")
    return reasons


def worsening_problem_key(patient_id: int, instrument: str) -> str:
    """One open worsening problem per patient and scale; each worse score is a fact of it."""
    return f"{FlagKind.SCALE_WORSENING}:patient:{patient_id}:{instrument}"


def worsening_flag(score: Score, previous: Score | None, base: Score | None, on: str) -> NewFlag | None:
    """§4 worsening as a problem that carries the latest score; urgent when it lands in the severe band."""
    reasons = worsening_reasons(score, previous, base)
    if not reasons:
        return None
    scale = scales.get_scale(score.instrument)
    band = scale.band_for(score.total)
    into_severe = score.instrument == "phq9" and score.total >= clinical.get("PHQ9_SEVERE_FROM")
    from_base = base is not None and score.total - base.total >= clinical.get("WORSENING_POINTS")
    against = (base.total, "baseline") if from_base else (previous.total, "previous score")
    title = f"{scale.name} {score.total} ({band}), {score.total - against[0]:+d} from {against[1]}"
    message = f"{scale.name} {score.total} on {on}: " + "; ".join(reasons) + "."
    return NewFlag(
        patient_id=score.patient_id,
        kind=FlagKind.SCALE_WORSENING_SEVERE if into_severe else FlagKind.SCALE_WORSENING,
        severity=clinical.get("WORSENING_SEVERE_BAND_SEVERITY") if into_severe else Severity.WARNING,
        dedup_key=worsening_problem_key(score.patient_id, score.instrument),
        title=title,
        message=message + (" Now in the severe band." if into_severe else ""),
        action=(
            "Review the course with the patient soon: symptoms are worse and in the severe band."
            if into_severe
            else "Review the course with the patient: symptoms are worse than before."
        ),
        raised_at=score.completed_at,
        facts=(
            NewFact(
                key=f"assessment:{score.id}",
                message=message,
                occurred_at=score.completed_at,
                subject_type_id=ContentType.objects.get_for_model(Assessment).pk,
                subject_id=score.id,
            ),
        ),
    )


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
    if score.instrument == "phq9" and (worse := worsening_flag(score, previous, base, on)):
        flags.append(worse)
    if course is None or base is None:
        return flags
    drug = course.current.drug_display
    root = course.versions[0].id
    if score.instrument in clinical.get("RESPONSE_INSTRUMENTS") and courses.is_response(base.total, score.total):
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
        flags.extend(side_effects.asex_flags([pk for pk, _, instrument in claimed if instrument == "asex"]))
        # Worsening folds into the patient's open problem (and opens a new one after a
        # clinician resolved it); the rest are one-off findings, raised once ever.
        problems = [f for f in flags if f.facts]
        once = [f for f in flags if not f.facts]
        return len(ids), raise_flags(problems) + raise_new_flags(once)


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
