"""A patient's whole course on one page: what was prescribed, taken, felt, weighed and flagged, in date order.

One query per kind of row whatever the length of the course: doses come summarised per
day by the database (a 90-day course has hundreds of planned doses) and are rolled up
per week here. The charts are drawn from the same rows (``course_charts``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.apps import apps
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse

from tracker import clinical, scales, side_effect_catalogue, trajectory
from tracker.charts import Band, Chart, Marker, Point, RefLine, draw
from tracker.models import (
    Assessment,
    DoseEvent,
    DrugClass,
    Flag,
    Patient,
    PlannedDose,
    Prescription,
    SideEffectReport,
    WeightMeasurement,
)
from tracker.selectors import CourseSummary, course_summaries
from tracker.selectors.monitoring import ScheduleDue, dues_by_patient

CHART_INSTRUMENTS = ("phq9", "gad7", "madrs")
DOSE_OUTCOMES = ("taken", "missed", "skipped", "pending")
SKIP_PREFIX = "skip:"  # per-day keys counting skips by preset reason ("skip:" alone: none chosen)


@dataclass
class WeekDoses:
    """Planned doses due in one week of treatment and what became of them."""

    week: int
    start: dt.date
    planned: int = 0
    taken: int = 0
    missed: int = 0
    skipped: int = 0
    pending: int = 0
    unplanned_taken: int = 0  # as-needed and unmatched doses, outside the adherence share
    skip_reasons: dict[str, int] = field(default_factory=dict)  # preset reason ("" if none) -> skips

    @property
    def skip_summary(self) -> str:
        """e.g. "2 side effects, 1 forgot": the patients' preset reasons, commonest first."""
        labels = {**dict(DoseEvent.SkipChoice.choices), "": "no reason chosen"}
        ranked = sorted(self.skip_reasons.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{n} {labels.get(choice, choice).lower()}" for choice, n in ranked)

    @property
    def judged(self) -> int:
        return self.taken + self.missed + self.skipped

    @property
    def adherence(self) -> float | None:
        """Share of the judged planned doses that were taken (None before any is judged)."""
        return self.taken / self.judged if self.judged else None


@dataclass(frozen=True)
class Event:
    at: dt.datetime
    kind: str  # prescription, doses, session, assessment, side_effect, weight, flag
    title: str
    detail: str = ""
    url: str = ""
    severity: int | None = None


@dataclass
class Timeline:
    patient: Patient
    origin: dt.date  # day 1 of week 1: the first prescription's start
    summaries: list[CourseSummary]
    prescriptions: list[Prescription]
    days: dict[dt.date, dict[str, int]]  # per local day: planned doses by outcome, and unplanned
    weeks: list[WeekDoses]
    assessments: list[Assessment]
    side_effects: list[SideEffectReport]
    weights: list[WeightMeasurement]
    flags: list[Flag]
    events: list[Event] = field(default_factory=list)
    due: list[ScheduleDue] = field(default_factory=list)  # §5 monitoring: what each schedule asks next

    def week_of(self, day: dt.date) -> int:
        return (day - self.origin).days // 7 + 1

    def weeks_since_start(self, instant: dt.datetime) -> float:
        return (instant.astimezone(self.patient.zone).date() - self.origin).days / 7


def _local_midnight(day: dt.date, patient: Patient) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=patient.zone)


def dose_days(patient: Patient, now: dt.datetime) -> dict[dt.date, dict[str, int]]:
    """Per local day: planned doses due by ``now`` by outcome, and unplanned doses taken (2 queries)."""
    counts = {name: Count("id", filter=Q(status=name)) for name in DOSE_OUTCOMES}
    days: dict[dt.date, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*DOSE_OUTCOMES, "unplanned"), 0))
    planned = (
        PlannedDose.objects.filter(patient=patient, due_at__lte=now)
        .exclude(status=PlannedDose.Status.CANCELLED)
        .values("local_date")
        .annotate(**counts)
        .order_by("local_date")
    )
    for row in planned:
        days[row["local_date"]].update({name: row[name] for name in DOSE_OUTCOMES})
    # One query for both: unplanned doses taken (on the day taken) and skips by preset reason
    # (on the day the skipped dose was planned for, as its planned-dose count above).
    events = (
        DoseEvent.objects.current()
        .filter(patient=patient, occurred_at__lte=now)
        .filter(Q(outcome=DoseEvent.Outcome.TAKEN, planned_dose__isnull=True) | Q(outcome=DoseEvent.Outcome.SKIPPED))
        .annotate(day=Coalesce("planned_dose__local_date", "local_date"))
        .values("day", "outcome", "skip_choice")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    for row in events:
        key = "unplanned" if row["outcome"] == DoseEvent.Outcome.TAKEN else f"{SKIP_PREFIX}{row['skip_choice']}"
        days[row["day"]][key] = days[row["day"]].get(key, 0) + row["n"]
    return dict(days)


def weekly_doses(days: dict[dt.date, dict[str, int]], origin: dt.date) -> list[WeekDoses]:
    """Roll per-day counts up into weeks of treatment (week 1 starts on ``origin``)."""
    weeks: dict[int, WeekDoses] = {}
    for day, row in sorted(days.items()):
        number = (day - origin).days // 7 + 1
        week = weeks.setdefault(number, WeekDoses(week=number, start=origin + dt.timedelta(days=(number - 1) * 7)))
        week.planned += row["taken"] + row["missed"] + row["skipped"] + row["pending"]
        week.taken += row["taken"]
        week.missed += row["missed"]
        week.skipped += row["skipped"]
        week.pending += row["pending"]
        week.unplanned_taken += row["unplanned"]
        for key, n in row.items():
            if key.startswith(SKIP_PREFIX):
                choice = key.removeprefix(SKIP_PREFIX)
                week.skip_reasons[choice] = week.skip_reasons.get(choice, 0) + n
    return [weeks[n] for n in sorted(weeks)]


def _admin_url(name: str, pk: int) -> str:
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:  # the sessions admin may not be registered yet
        return ""


def clinic_session_events(patient: Patient) -> list[Event]:
    """In-clinic ketamine/esketamine sessions, once ``tracker.models.sessions`` is installed (1 query).

    The hook for the sessions work: looked up by name so the timeline works with or without it.
    """
    try:
        model = apps.get_model("tracker", "InClinicSession")
    except LookupError:
        return []
    rows = model._default_manager.filter(patient=patient, entered_in_error_at__isnull=True).select_related(
        "prescription__drug"
    )
    events = []
    for session in rows:
        at = session.first_device_at or session.created_at
        bp = getattr(session, "bp_before_systolic", None)
        detail = ", ".join(
            part
            for part in (
                f"BP before {session.bp_before_systolic}/{session.bp_before_diastolic}" if bp is not None else "",
                f"lowest MOAA/s {session.moaas_lowest}" if getattr(session, "moaas_lowest", None) is not None else "",
                f"CADSS {session.cadss_total}" if getattr(session, "cadss_total", None) is not None else "",
                f"discharged {session.discharge_at:%H:%M}" if getattr(session, "discharge_at", None) else "",
            )
            if part
        )
        events.append(
            Event(
                at=at,
                kind="session",
                title=f"In-clinic session: {session.prescription.drug} ({session.get_status_display().lower()})",
                detail=detail,
                url=_admin_url("admin:tracker_inclinicsession_change", session.pk),
            )
        )
    return events


def _events(timeline: Timeline, sessions: list[Event]) -> list[Event]:
    """Every dated thing on the course, oldest first; doses as one line per week."""
    patient = timeline.patient
    events: list[Event] = []
    for rx in timeline.prescriptions:
        verb = "Dose changed" if rx.replaces_id else "Started"
        events.append(
            Event(
                at=_local_midnight(rx.start_date, patient),
                kind="prescription",
                title=f"{verb}: {rx.drug} {rx.dose.normalize():f} {rx.dose_unit}",
                detail=" ".join(
                    filter(None, [rx.change_reason or rx.indication, *(f"Warning: {w}" for w in rx.dose_warnings)])
                ),
                url=reverse("admin:tracker_prescription_change", args=[rx.pk]),
            )
        )
    for week in timeline.weeks:
        share = f"{week.adherence:.0%}" if week.adherence is not None else "not judged yet"
        extra = f", {week.unplanned_taken} unplanned" if week.unplanned_taken else ""
        reasons = f" ({week.skip_summary})" if week.skip_reasons else ""
        events.append(
            Event(
                at=_local_midnight(week.start, patient),
                kind="doses",
                title=f"Week {week.week} doses: {week.taken} of {week.planned} planned taken ({share})",
                detail=f"{week.missed} missed, {week.skipped} skipped{reasons}, {week.pending} due{extra}",
            )
        )
    for a in timeline.assessments:
        events.append(
            Event(
                at=a.completed_at,
                kind="assessment",
                title=assessment_title(a),
                detail=a.get_source_display(),
                url=reverse("admin:tracker_assessment_change", args=[a.pk]),
            )
        )
    for s in timeline.side_effects:
        events.append(
            Event(
                at=s.reported_at,
                kind="side_effect",
                title=f"Side effect: {side_effect_catalogue.label(s.effect)} ({s.severity})",
                detail=s.description,
                url=reverse("admin:tracker_sideeffectreport_change", args=[s.pk]),
            )
        )
    for w in timeline.weights:
        events.append(
            Event(
                at=w.measured_at,
                kind="weight",
                title=f"Weight: {w.weight_kg} kg",
                detail=w.note,
                url=reverse("admin:tracker_weightmeasurement_change", args=[w.pk]),
            )
        )
    for f in timeline.flags:
        events.append(
            Event(
                at=f.raised_at,
                kind="flag",
                title=f"{f.get_severity_display()} flag: {f.get_kind_display()} ({f.get_status_display().lower()})",
                detail=f.message,
                url=reverse("admin:tracker_flag_change", args=[f.pk]),
                severity=f.severity,
            )
        )
    events.extend(sessions)
    return sorted(events, key=lambda e: e.at)


def headline_score(assessment: Assessment) -> tuple[int, str]:
    """(value, what it is) to show for a questionnaire: its total, or FIBSER's burden item.

    §5 FIBSER: only the burden item (0–6) guides action; frequency + intensity + burden
    added up means nothing clinically, so no FIBSER "total" is ever shown.
    """
    if assessment.instrument == scales.FIBSER.code:
        return assessment.answers[scales.FIBSER_BURDEN_ITEM], "burden (0-6)"
    return assessment.total, "points"


def assessment_title(assessment: Assessment) -> str:
    """The timeline's line for a questionnaire, e.g. "PHQ-9: 12 (moderate)" or "FIBSER burden: 4 of 6 (…)"."""
    name = scales.get_scale(assessment.instrument).name
    if assessment.instrument == scales.FIBSER.code:
        burden, _ = headline_score(assessment)
        return f"{name} burden: {burden} of 6 ({assessment.band})"
    return f"{name}: {assessment.total} ({assessment.band})"


def patient_timeline(patient: Patient, *, now: dt.datetime) -> Timeline:
    """The course of ``patient`` up to ``now``; a fixed number of queries (see tests)."""
    prescriptions = list(
        Prescription.objects.current().filter(patient=patient).select_related("drug").order_by("start_date", "id")
    )
    today = now.astimezone(patient.zone).date()
    origin = prescriptions[0].start_date if prescriptions else today
    days = dose_days(patient, now)
    timeline = Timeline(
        patient=patient,
        origin=origin,
        summaries=course_summaries(patient, today=today),
        prescriptions=prescriptions,
        days=days,
        weeks=weekly_doses(days, origin),
        assessments=list(Assessment.objects.current().filter(patient=patient).order_by("completed_at", "id")),
        side_effects=list(SideEffectReport.objects.current().filter(patient=patient).order_by("reported_at", "id")),
        weights=list(WeightMeasurement.objects.current().filter(patient=patient).order_by("measured_at", "id")),
        flags=list(Flag.objects.filter(patient=patient).order_by("raised_at", "id")),
    )
    timeline.events = _events(timeline, clinic_session_events(patient))
    # The FIBSERs are the assessments read above; a query only for a patient under a measured schedule.
    fibsers = {patient.pk: [a for a in timeline.assessments if a.instrument == "fibser"]}
    courses = {patient.pk: [summary.course for summary in timeline.summaries]}
    timeline.due = dues_by_patient({patient.pk: patient.zone}, courses, now=now, fibser_scores=fibsers).get(
        patient.pk, []
    )
    return timeline


def _baseline_total(timeline: Timeline, instrument: str) -> int | None:
    """The baseline of the most recent course that has one for this instrument."""
    for summary in reversed(timeline.summaries):
        outcome = summary.outcomes.get(instrument)
        if outcome is not None and outcome.baseline is not None:
            return outcome.baseline.total
    return None


def _score_chart(timeline: Timeline, instrument: str) -> Chart | None:
    scale = scales.get_scale(instrument)
    points = [
        Point(
            week=timeline.weeks_since_start(a.completed_at),
            value=a.total,
            label=f"{a.completed_at.astimezone(timeline.patient.zone):%Y-%m-%d}: {a.total}",
        )
        for a in timeline.assessments
        if a.instrument == instrument
    ]
    if not points:
        return None
    lines = []
    baseline = _baseline_total(timeline, instrument)
    # §4: response is defined for PHQ-9 only; GAD-7 gets its screening cut-off instead.
    if baseline is not None and instrument in clinical.get("RESPONSE_INSTRUMENTS"):
        response_at = baseline * (1 - clinical.get("RESPONSE_REDUCTION"))
        lines.append(RefLine(response_at, f"Response ≤ {response_at:g}", "response"))
    remission_below = clinical.get("REMISSION_BELOW").get(instrument)
    if remission_below is not None:
        lines.append(RefLine(remission_below - 1, f"Remission ≤ {remission_below - 1}", "remission"))
    if instrument == scales.GAD7.code:
        cut_off = clinical.get("GAD7_SCREEN_POSITIVE_FROM")
        lines.append(RefLine(cut_off, f"Screen positive ≥ {cut_off}", "threshold"))
    described = "; ".join(line.label for line in lines) or "no reference lines"
    markers = dose_change_markers(timeline)
    changes = f" Dose changes: {'; '.join(m.label for m in markers)}." if markers else ""
    bands, no_band = expected_courses(timeline) if instrument == "phq9" else ([], "")
    return draw(
        kind="line",
        chart_id=f"chart-{instrument}",
        title=f"{scale.name} total over the weeks of treatment",
        description=f"{_scores_text(points)}, scale 0 to {scale.max_total}. Lines: {described}.{changes}{no_band}",
        y_name=scale.name,
        y_max=scale.max_total,
        points=points,
        lines=lines,
        markers=markers,
        bands=bands,
    )


def expected_courses(timeline: Timeline) -> tuple[list[Band], str]:
    """§4 time_course as a band per antidepressant course with a PHQ-9 baseline (``trajectory``),
    placed on the chart's weeks; and a sentence for a course §4 gives no expected course for.

    The band starts at week 6 of the course: §4 has no figures before it (see ``trajectory``).
    """
    bands, missing = [], []
    for summary in timeline.summaries:
        course, outcome = summary.course, summary.outcomes.get("phq9")
        if course.current.drug_class not in DrugClass.antidepressants() or outcome is None or not outcome.baseline:
            continue
        base, drug = outcome.baseline.total, course.current.drug_display
        checkpoints = trajectory.expected_band(base)
        if not checkpoints:
            missing.append(
                f" No expected-course band for {drug}: §4's time course is for severe depression "
                f"(baseline {clinical.get('PHQ9_SEVERE_FROM')} or more), this baseline is {base}."
            )
            continue
        offset = (course.start_date - timeline.origin).days / 7
        first, last = checkpoints[0], checkpoints[-1]
        rates = "; ".join(
            f"by week {c.week} {c.responded:.0%} of patients were at or below {c.high:g} and {c.remitted:.0%} "
            f"at or below {c.low:g}"
            for c in checkpoints
        )
        label = (
            f"Expected course on {drug} (baseline {base}), shaded from week {first.week} to week {last.week} "
            f"of the course between PHQ-9 {first.low:g} (remission) and {first.high:g} (response): in §4's "
            f"figures for severe depression, {rates}. §4 gives no figures before week {first.week}. "
            "A guide for the clinician, not a target."
        )
        bands.append(Band(edges=tuple((offset + c.week, c.low, c.high) for c in checkpoints), label=label))
    return bands, "".join(missing)


def _count(n: int, noun: str) -> str:
    """ "1 check-in", "3 check-ins": chart texts stay grammatical for a single point."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _scores_text(points: list[Point]) -> str:
    if len(points) == 1:
        return f"1 score, {points[0].label}"
    return f"{len(points)} scores from {points[0].label} to {points[-1].label}"


def dose_change_markers(timeline: Timeline) -> list[Marker]:
    """Each dose change of the course (a version that replaces another), for the score charts.

    A clinician reads a score chart against the doses: did PHQ-9 fall after the increase?
    """
    by_id = {rx.pk: rx for rx in timeline.prescriptions}
    markers = []
    for rx in timeline.prescriptions:
        if rx.replaces_id is None:
            continue
        before = by_id.get(rx.replaces_id)
        change = f"{before.dose.normalize():f} → {rx.dose_text}" if before else rx.dose_text
        markers.append(
            Marker(
                week=(rx.start_date - timeline.origin).days / 7,
                short=rx.dose_text,
                label=f"{rx.start_date:%Y-%m-%d}: {rx.drug} {change}",
            )
        )
    return markers


def _adherence_chart(timeline: Timeline) -> Chart | None:
    judged = [w for w in timeline.weeks if w.adherence is not None]
    if not judged:
        return None
    minimum = clinical.get("ADHERENCE_MIN_SHARE") * 100
    points = [
        Point(
            week=w.week - 0.5,  # the bar sits in the middle of its week
            value=round(w.adherence * 100),
            label=f"Week {w.week}: {w.taken} of {w.judged} taken",
        )
        for w in judged
    ]
    return draw(
        kind="bar",
        chart_id="chart-adherence",
        title="Weekly adherence: share of planned doses taken",
        description=f"{len(points)} weeks; the dashed line marks {minimum:g} %, below which missed doses escalate.",
        y_name="% taken",
        y_max=100,
        points=points,
        lines=[RefLine(minimum, f"{minimum:g} %", "threshold")],
    )


def _burden_chart(timeline: Timeline) -> Chart | None:
    zone = timeline.patient.zone
    burdens = [
        (a.completed_at, a.answers[scales.FIBSER_BURDEN_ITEM]) for a in timeline.assessments if a.instrument == "fibser"
    ]
    points = [
        Point(week=timeline.weeks_since_start(when), value=burden, label=f"{when.astimezone(zone):%Y-%m-%d}: {burden}")
        for when, burden in burdens
    ]
    if not points:
        return None
    warning, urgent = clinical.get("FIBSER_BURDEN_WARNING"), clinical.get("FIBSER_BURDEN_URGENT")
    return draw(
        kind="line",
        chart_id="chart-fibser",
        title="Side-effect burden (FIBSER burden item) over the weeks",
        description=f"{_count(len(points), 'check-in')}, 0 (none) to 6; {warning} or more: address the side effect; "
        f"{urgent} or more: lower the dose or switch.",
        y_name="FIBSER burden",
        y_max=6,
        points=points,
        lines=[RefLine(warning, f"Address ≥ {warning}", "response"), RefLine(urgent, f"Act ≥ {urgent}", "threshold")],
    )


def course_charts(timeline: Timeline) -> list[Chart]:
    """The charts that have data: PHQ-9, GAD-7, MADRS, weekly adherence, side-effect burden."""
    charts = [_score_chart(timeline, code) for code in CHART_INSTRUMENTS]
    charts += [_adherence_chart(timeline), _burden_chart(timeline)]
    return [chart for chart in charts if chart is not None]
