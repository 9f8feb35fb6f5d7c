"""Side-effect flags (clinical-reference §5): severe effects, burden, persistence, effects
after a dose increase, overdue weekly check-ins, the young-adult PHQ-9 schedule and weight
gain on an antipsychotic.

New reports are claimed once (``evaluated_at``); the check-in and monitoring rules look
at every active course, a chunk of patients at a time, with a fixed number of queries.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from tracker import clinical, scales, side_effect_catalogue
from tracker.courses import Course, Score, Weight, weight_baseline, weight_gain_percent
from tracker.models import (
    Assessment,
    DrugClass,
    FlagKind,
    Patient,
    Severity,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.rules import loaders
from tracker.rules.base import SweepResult, in_batches
from tracker.services.flags import NewFlag, build_flag, raise_flags, raise_new_flags

BATCH_SIZE = 2000
AT_LEAST_MODERATE = ("moderate", "severe")


def burden_flags(fibser_ids: Collection[int]) -> list[NewFlag]:
    """§5 FIBSER burden 3–4: address the side effect (warning); 5–6: lower the dose or switch (urgent)."""
    if not fibser_ids:
        return []
    flags = []
    kind = ContentType.objects.get_for_model(Assessment)
    for pk, patient_id, answers, completed_at in Assessment.objects.filter(pk__in=fibser_ids).values_list(
        "id", "patient_id", "answers", "completed_at"
    ):
        burden = answers[scales.FIBSER_BURDEN_ITEM]
        urgent_from, warning_from = clinical.get("FIBSER_BURDEN_URGENT"), clinical.get("FIBSER_BURDEN_WARNING")
        if burden >= urgent_from:
            severity = Severity.URGENT
            action = f"Consider lowering the dose or switching (FIBSER burden {urgent_from} or more)."
        elif burden >= warning_from:
            severity = Severity.WARNING
            action = f"Address the side effects with the patient (FIBSER burden {warning_from} to {urgent_from - 1})."
        else:
            continue
        flags.append(
            build_flag(
                patient=patient_id,
                kind=FlagKind.SE_BURDEN,
                severity=severity,
                dedup_key=f"{FlagKind.SE_BURDEN}:assessment:{pk}",
                message=f"Side effects get in the way of daily life: FIBSER burden {burden} of 6.",
                action=action,
                raised_at=completed_at,
                subject_type=kind,
                subject_id=pk,
            )
        )
    return flags


def asex_flags(asex_ids: Collection[int]) -> list[NewFlag]:
    """§5 ASEX: a positive screen (total ≥ 19, or any item ≥ 5, or any three items ≥ 4) flags once.

    One flag per response: each positive ASEX is its own finding for the clinician to discuss,
    at the severity clinical.ASEX_POSITIVE_SEVERITY [P].
    """
    if not asex_ids:
        return []
    flags = []
    kind = ContentType.objects.get_for_model(Assessment)
    for pk, patient_id, answers, total, completed_at in Assessment.objects.filter(pk__in=asex_ids).values_list(
        "id", "patient_id", "answers", "total", "completed_at"
    ):
        if not scales.asex_dysfunction(answers):
            continue
        worst = ", ".join(
            f"{scales.ASEX_DOMAINS[i]} {v}"
            for i, v in enumerate(answers)
            if v >= clinical.get("ASEX_SEVERAL_ITEMS_MIN")
        )
        flags.append(
            build_flag(
                patient=patient_id,
                kind=FlagKind.SE_SEXUAL_DYSFUNCTION,
                severity=clinical.get("ASEX_POSITIVE_SEVERITY"),
                dedup_key=f"{FlagKind.SE_SEXUAL_DYSFUNCTION}:assessment:{pk}",
                message=(
                    f"ASEX screen positive for sexual dysfunction: total {total} (5–30, higher is worse)"
                    + (f"; {worst} of 6." if worst else ".")
                ),
                action="Discuss sexual side effects with the patient and consider a dose change, timing or a switch.",
                raised_at=completed_at,
                subject_type=kind,
                subject_id=pk,
            )
        )
    return flags


def _report_flags(
    report: SideEffectReport, earlier: list[SideEffectReport], own_courses: list[Course], zone: ZoneInfo
) -> tuple[list[NewFlag], list[NewFlag]]:
    """(once-only flags, episode flags) for one new report."""
    once: list[NewFlag] = []
    episode: list[NewFlag] = []
    effect = side_effect_catalogue.label(report.effect) if report.effect != "other" else report.description
    kind = ContentType.objects.get_for_model(SideEffectReport)
    common = {
        "patient": report.patient_id,
        "raised_at": report.reported_at,
        "subject_type": kind,
        "subject_id": report.pk,
    }
    reported_on = report.reported_at.astimezone(zone).date()
    if report.severity == SideEffectReport.Severity.SEVERE:
        once.append(
            build_flag(
                kind=FlagKind.SE_SEVERE,
                severity=clinical.get("SEVERE_SIDE_EFFECT_SEVERITY"),
                dedup_key=f"{FlagKind.SE_SEVERE}:report:{report.pk}",
                message=f"Severe side effect reported on {reported_on:%d %b %Y}: {effect}.",
                action="Contact the patient today about this side effect.",
                **common,
            )
        )
    same = [r for r in earlier if r.effect == report.effect and r.effect != "other"]
    if report.severity in AT_LEAST_MODERATE:
        span = dt.timedelta(days=clinical.get("PERSISTENT_SIDE_EFFECT_DAYS"))
        lasting = [r for r in same if r.severity in AT_LEAST_MODERATE and report.reported_at - r.reported_at >= span]
        if lasting:
            since = min(r.reported_at for r in lasting).astimezone(zone).date()
            weeks = (reported_on - since).days // 7
            episode.append(
                build_flag(
                    kind=FlagKind.SE_PERSISTENT,
                    severity=Severity.WARNING,
                    dedup_key=f"{FlagKind.SE_PERSISTENT}:patient:{report.patient_id}:effect:{report.effect}",
                    message=f"{effect} reported as moderate or worse for {weeks} weeks (since {since:%d %b %Y}).",
                    action="Review this lasting side effect with the patient; consider the dose or the medicine.",
                    **common,
                )
            )
    onset = report.onset_date or reported_on
    window = dt.timedelta(days=clinical.get("SIDE_EFFECT_AFTER_INCREASE_DAYS"))
    for course in own_courses:
        for before, after in course.increases():
            if not after.start_date <= onset <= after.start_date + window:
                continue
            if any(r.reported_at.astimezone(zone).date() < after.start_date for r in same):
                continue  # the effect was there before the increase
            once.append(
                build_flag(
                    kind=FlagKind.SE_AFTER_DOSE_INCREASE,
                    severity=Severity.WARNING,
                    dedup_key=f"{FlagKind.SE_AFTER_DOSE_INCREASE}:report:{report.pk}:rx:{after.id}",
                    message=(
                        f"New side effect ({effect}) from {onset:%d %b %Y}, within two weeks of "
                        f"{after.drug_display} going up from {before.dose.normalize():f} to "
                        f"{after.dose.normalize():f} {after.dose_unit} on {after.start_date:%d %b %Y}."
                    ),
                    action="Check whether the dose increase caused it and whether to keep the new dose.",
                    **common,
                )
            )
    return once, episode


def _new_reports(now: dt.datetime, batch_size: int) -> tuple[int, int]:
    with transaction.atomic():
        ids = loaders.claim("tracker_sideeffectreport", "reported_at", now, batch_size)
        if not ids:
            return 0, 0
        new = list(SideEffectReport.objects.filter(pk__in=ids))
        patient_ids = {r.patient_id for r in new}
        people = loaders.patients(patient_ids)
        history: dict[int, list[SideEffectReport]] = defaultdict(list)
        for r in SideEffectReport.objects.current().filter(patient_id__in=patient_ids).order_by("reported_at", "id"):
            history[r.patient_id].append(r)
        patient_courses = loaders.courses_by_patient(patient_ids)
        once: list[NewFlag] = []
        episode: list[NewFlag] = []
        for report in new:
            earlier = [r for r in history[report.patient_id] if r.reported_at < report.reported_at]
            a, b = _report_flags(
                report, earlier, patient_courses.get(report.patient_id, []), people[report.patient_id].zone
            )
            once += a
            episode += b
        return len(ids), raise_new_flags(once) + raise_flags(episode)


def young_adult_due_dates(anchor: dt.date) -> list[dt.date]:
    """§5 young_adult_cadence: weekly for 4 weeks, then every 2 weeks to week 12."""
    weekly = clinical.get("YOUNG_ADULT_WEEKLY_WEEKS")
    until = clinical.get("YOUNG_ADULT_UNTIL_WEEK")
    weeks = list(range(1, weekly + 1)) + list(range(weekly + 2, until + 1, 2))
    return [anchor + dt.timedelta(weeks=w) for w in weeks]


def metabolic_schedule_text(start_date: dt.date, today: dt.date) -> str:
    """What §5 antipsychotic_metabolic asks for from ``today`` on, by schedule: "Due: weight on 12 Jan 2027 …".

    Pure: the due dates of the course's own schedules (tracker.monitoring), the next one of each
    on or after today, whether or not it is already recorded (the caseload's "next measurement
    due" and the monitor.overdue flag know that).
    """
    from tracker import monitoring
    from tracker.selectors.monitoring import measure_label

    parts = []
    for schedule in monitoring.schedules().values():
        if "sga" not in schedule.classes:
            continue
        # After today: a weighing on the flag's own day is what raised it.
        upcoming = [
            d
            for d in monitoring.due_dates(
                schedule, start_date=start_date, until=monitoring.due_horizon(schedule, today)
            )
            if d > today
        ]
        if upcoming:
            labels = [measure_label(m) for m in schedule.measures]
            lipids = set(schedule.measures) == LIPID_PANEL
            what = "lipid panel" if lipids else " and ".join(_in_sentence(label) for label in labels)
            parts.append(f"{what} on {upcoming[0]:%d %b %Y}")
    return ("Due next (§5): " + "; ".join(parts) + ".") if parts else ""


LIPID_PANEL = {"total_cholesterol", "ldl", "hdl", "triglycerides"}  # named as one item in a sentence


def _in_sentence(label: str) -> str:
    """'Fasting glucose' -> 'fasting glucose' mid-sentence; acronyms such as 'BP' stay as they are."""
    first = label.split()[0]
    return label if first.isupper() else label[0].lower() + label[1:]


def metabolic_weight_flags(patient: Patient, active: list[Course], weights: Sequence[Weight]) -> list[NewFlag]:
    """§0 se.metabolic_weight: ≥ 5 % weight gain from the course's baseline on an antipsychotic (warning).

    ``weights`` are the patient's current measurements up to the judged instant, oldest
    first. One flag per course (keyed on its start), never raised again once resolved.
    """
    threshold = Decimal(str(clinical.get("METABOLIC_WEIGHT_GAIN_PERCENT")))
    zone = patient.zone
    flags = []
    for course in active:
        if course.current.drug_class not in DrugClass.antipsychotics():
            continue
        baseline = weight_baseline(weights, course.start_date, zone)
        if baseline is None:
            continue
        latest = max(weights, key=lambda w: (w.measured_at, w.id))
        if latest is baseline:
            continue
        gain = weight_gain_percent(baseline.weight_kg, latest.weight_kg)
        if gain < threshold:
            continue
        drug = course.current.drug_display
        latest_day = latest.measured_at.astimezone(zone).date()
        flags.append(
            build_flag(
                patient=patient.pk,
                kind=FlagKind.SE_METABOLIC_WEIGHT,
                severity=Severity.WARNING,
                dedup_key=f"{FlagKind.SE_METABOLIC_WEIGHT}:patient:{patient.pk}:start:{course.start_date}",
                message=(
                    f"Weight up {gain:.1f} % on {drug} (started {course.start_date:%d %b %Y}): "
                    f"{baseline.weight_kg} kg at baseline on {baseline.measured_at.astimezone(zone):%d %b %Y}, "
                    f"{latest.weight_kg} kg on {latest.measured_at.astimezone(zone):%d %b %Y} "
                    f"(review from a {threshold.normalize():f} % gain)."
                ),
                action=(
                    "Review weight, glucose and lipids with the patient; consider the options in the "
                    "clinical reference (§5 antipsychotic_metabolic), such as switching to an antipsychotic "
                    f"with less weight gain. {metabolic_schedule_text(course.start_date, latest_day)}"
                ),
                raised_at=latest.measured_at,
                subject_type=ContentType.objects.get_for_model(WeightMeasurement),
                subject_id=latest.id,
            )
        )
    return flags


def monitoring_flags(
    patient: Patient,
    own_courses: list[Course],
    scores: list[Score],
    today: dt.date,
    weights: Sequence[Weight] = (),
) -> list[NewFlag]:
    """Overdue weekly check-in (info), under 25 on an antidepressant overdue PHQ-9 (warning), and
    weight gain on an antipsychotic (warning)."""
    active = [c for c in own_courses if c.is_active]
    if not active:
        return []
    zone = patient.zone
    flags = []
    interval = dt.timedelta(days=clinical.get("CHECKIN_INTERVAL_DAYS"))
    grace = dt.timedelta(days=clinical.get("CHECKIN_OVERDUE_AFTER_DAYS"))
    start = min(c.start_date for c in active)
    checkins = [s.completed_at.astimezone(zone).date() for s in scores if s.instrument == "fibser"]
    last = max([d for d in checkins if d >= start], default=None)
    due = (last or start) + interval
    if today > due + grace:
        flags.append(
            build_flag(
                patient=patient.pk,
                kind=FlagKind.SE_CHECKIN_OVERDUE,
                severity=Severity.INFO,
                dedup_key=f"{FlagKind.SE_CHECKIN_OVERDUE}:patient:{patient.pk}:due:{due}",
                message=f"Weekly side-effect check-in due on {due:%d %b %Y} has not been done.",
                action="Remind the patient to complete the weekly check-in.",
                raised_at=dt.datetime.combine(due + grace, dt.time(0), tzinfo=zone),
            )
        )
    overdue_after = dt.timedelta(days=clinical.get("YOUNG_ADULT_OVERDUE_DAYS"))
    phq_days = [s.completed_at.astimezone(zone).date() for s in scores if s.instrument == "phq9"]
    for course in active:
        current = course.current
        if current.drug_class not in DrugClass.antidepressants():
            continue
        if patient.age_on(course.start_date) >= clinical.get("YOUNG_ADULT_AGE_BELOW"):
            continue
        anchor = course.last_change_date  # restarts at every start or dose change
        passed = [d for d in young_adult_due_dates(anchor) if d + overdue_after < today]
        if not passed:
            continue
        latest_due = passed[-1]
        window_start = latest_due - dt.timedelta(days=clinical.get("YOUNG_ADULT_EARLY_DAYS"))
        if any(window_start <= d for d in phq_days):
            continue
        flags.append(
            build_flag(
                patient=patient.pk,
                kind=FlagKind.SE_YOUNG_ADULT_MONITORING_OVERDUE,
                severity=Severity.WARNING,
                dedup_key=f"{FlagKind.SE_YOUNG_ADULT_MONITORING_OVERDUE}:rx:{current.id}:due:{latest_due}",
                message=(
                    f"PHQ-9 due on {latest_due:%d %b %Y} is more than {overdue_after.days} days overdue for a "
                    f"patient under {clinical.get('YOUNG_ADULT_AGE_BELOW')} on {current.drug_display} "
                    "(boxed warning: watch for emergent suicidality)."
                ),
                action="Contact the patient for a PHQ-9 and a check on suicidal thoughts.",
                raised_at=dt.datetime.combine(latest_due + overdue_after, dt.time(0), tzinfo=zone),
            )
        )
    flags += metabolic_weight_flags(patient, active, weights)
    return flags


def _on_an_antipsychotic(courses: list[Course]) -> bool:
    return any(c.is_active and c.current.drug_class in DrugClass.antipsychotics() for c in courses)


def _monitoring(now: dt.datetime) -> int:
    raised = 0
    for patient_ids in loaders.active_patient_ids_in_chunks():
        people = loaders.patients(patient_ids)
        patient_courses = loaders.courses_by_patient(patient_ids)
        scores = loaders.scores_by_patient(patient_ids, ("phq9", "fibser"))
        # Weights only for patients on an antipsychotic: one query, none when the chunk has none.
        weights = loaders.weights_by_patient(
            [pid for pid, courses in patient_courses.items() if _on_an_antipsychotic(courses)], until=now
        )
        flags: list[NewFlag] = []
        for patient_id, patient in people.items():
            today = now.astimezone(patient.zone).date()
            flags += monitoring_flags(
                patient,
                patient_courses.get(patient_id, []),
                scores.get(patient_id, []),
                today,
                weights.get(patient_id, []),
            )
        raised += raise_new_flags(flags)
    return raised


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """New reports, then overdue check-ins and monitoring; see the module docstring."""
    examined, raised = in_batches(lambda size: _new_reports(now, size), batch_size)
    raised += _monitoring(now)
    return SweepResult(name="side_effects", examined=examined, flags_raised=raised)
