"""Reads for the portal's pages, each a fixed number of queries whatever the course length.

Every function takes the patient already resolved from the login, so nothing here can
reach another patient's rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from tracker import clinical, scales, side_effect_catalogue
from tracker.models import Assessment, Clinic, DoseEvent, DoseSchedule, Flag, Patient, PlannedDose, Prescription
from tracker.models.drugs import Route
from tracker.models.reminders import PrescriptionReminder
from tracker.portal import instruments
from tracker.services.assessments import item9_positive, suicidality_key

# Weekly questionnaires the patient fills in, in the order they are offered.
WEEKLY = ("phq9", "gad7", "fibser")
# Offered only to some courses (issue 15), each with its own [P] cadence in clinical.py:
# ASEX to patients on a medicine of ASEX_DRUG_CLASSES, PCL-5 when an indication names PTSD.
BY_COURSE = {"asex": "ASEX_INTERVAL_DAYS", "pcl5": "PCL5_INTERVAL_DAYS"}
OPEN_STATUSES = (PlannedDose.Status.PENDING, PlannedDose.Status.MISSED)

# Translated like the rest of the portal; every translation keeps the same numbers (each becomes a tel: link).
DEFAULT_CRISIS_GUIDANCE = gettext_lazy(
    "If you might act on these thoughts, or you are not safe right now, call your local emergency "
    "number (999 in the UK, 112 in Europe, 911 in the US and Canada) or go to the nearest emergency department.\n"
    "You can talk to someone at any time, day or night: in the UK and Ireland call Samaritans on 116 123; "
    "in the US call or text 988.\n"
    "If you can, tell someone you trust how you are feeling and stay with them."
)


def local_today(patient: Patient, now: dt.datetime | None = None) -> dt.date:
    """Today in the patient's zone: a late evening in New York is still today there."""
    return (now or timezone.now()).astimezone(patient.zone).date()


# A phone number written in running text: 3 or more digits, spaces allowed inside, an optional +.
PHONE_IN_TEXT = re.compile(r"(?<![\w+])\+?\d[\d ]*\d(?!\w)")


def _tel(number: str) -> str:
    return number.replace(" ", "")


def _linked(line: str) -> list[tuple[str, str]]:
    """A paragraph as (text, tel) pieces: every number of 3 or more digits is tap-to-call."""
    pieces: list[tuple[str, str]] = []
    last = 0
    for found in PHONE_IN_TEXT.finditer(line):
        number = found.group().strip()
        if len(_tel(number).lstrip("+")) < 3:
            continue
        pieces.append((line[last : found.start()], ""))
        pieces.append((number, _tel(number)))
        last = found.start() + len(number)
    pieces.append((line[last:], ""))
    return [piece for piece in pieces if piece[0]]


def crisis_guidance(clinic: Clinic) -> list[list[tuple[str, str]]]:
    """The clinic's own crisis text if it wrote one, else a general default; as paragraphs of
    (text, tel) pieces, so a number typed in the text is a tel: link as well."""
    text = clinic.crisis_guidance.strip() or str(DEFAULT_CRISIS_GUIDANCE)
    return [_linked(line.strip()) for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class CrisisNumber:
    label: str
    number: str

    @property
    def tel(self) -> str:
        return _tel(self.number)


def crisis_numbers(clinic: Clinic) -> list[CrisisNumber]:
    """The clinic's own phone, then its crisis contacts (duty line, national lines) in order (1 query)."""
    own = _("Your clinic, %(name)s") % {"name": clinic.name}
    numbers = [CrisisNumber(own, clinic.phone)] if clinic.phone.strip() else []
    numbers += [CrisisNumber(c.label, c.number) for c in clinic.crisis_contacts.all()]
    return numbers


# --- Medicines ----------------------------------------------------------------------------


def active_schedules(patient: Patient, now: dt.datetime) -> list[DoseSchedule]:
    """The schedules in force now, with prescription and drug (1 query).

    A dose change keeps the old version running (superseded, with ``active_until`` in the
    future) until the switch instant, so the plan's active window decides, not the status.
    """
    today = local_today(patient, now)
    return list(
        DoseSchedule.objects.current()
        .filter(
            prescription__patient=patient,
            prescription__entered_in_error_at__isnull=True,
            prescription__status__in=(Prescription.Status.ACTIVE, Prescription.Status.SUPERSEDED),
            prescription__start_date__lte=today,
            start_date__lte=today,
        )
        .filter(Q(prescription__end_date__isnull=True) | Q(prescription__end_date__gte=today))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=now))
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=now))
        .select_related("prescription__drug")
        .annotate(taken_today=Coalesce(Subquery(_taken_on(today)), 0))
        .order_by("prescription__drug__display_name", "id")
    )


def _taken_on(day: dt.date) -> QuerySet[DoseEvent]:
    """How many doses of the row's prescription were taken on ``day``, as a subquery.

    One index lookup (prescription, local day) per schedule; a join with a count would read
    every dose event of the prescription, a list that grows all through the course.
    """
    return (
        DoseEvent.objects.current()
        .filter(prescription=OuterRef("prescription"), local_date=day, outcome=DoseEvent.Outcome.TAKEN)
        .order_by()
        .values("prescription")
        .annotate(n=Count("pk"))
        .values("n")
    )


# How the medicine is taken, in the patient's words and language (Route's labels stay English for clinicians).
ROUTE_WORDS = {
    Route.ORAL: gettext_lazy("by mouth"),
    Route.NASAL: gettext_lazy("nasal spray"),
    Route.INTRAVENOUS: gettext_lazy("intravenous infusion"),
    Route.SUBLINGUAL: gettext_lazy("under the tongue"),
    Route.INTRAMUSCULAR: gettext_lazy("intramuscular injection"),
}


def schedule_words(schedule: DoseSchedule) -> str:
    """A schedule as the patient reads it, in the active language ("daily at 08:00, 20:00").

    DoseSchedule's own text is the clinicians' (English); this says the same for the portal.
    """
    if schedule.kind == DoseSchedule.Kind.PRN:
        return _("as needed")
    times = ", ".join(schedule.times_of_day)
    if schedule.kind == DoseSchedule.Kind.WEEKDAYS:
        days = " ".join(str(WEEKDAYS_ABBR[day]) for day in sorted(schedule.weekdays))
        return _("%(days)s at %(times)s") % {"days": days, "times": times}
    if schedule.kind == DoseSchedule.Kind.EVERY_N_DAYS and schedule.interval_days > 1:
        return _("every %(count)s days at %(times)s") % {"count": schedule.interval_days, "times": times}
    return _("daily at %(times)s") % {"times": times}


@dataclass
class Medicine:
    """One current prescription with all its schedules, for "My medicines"."""

    prescription: Prescription
    schedules: list[DoseSchedule] = field(default_factory=list)

    @property
    def when(self) -> str:
        return "; ".join(schedule_words(s) for s in self.schedules)

    @property
    def route(self) -> str:
        route = self.prescription.route
        return str(ROUTE_WORDS.get(route, self.prescription.get_route_display().lower()))


def medicines(schedules: list[DoseSchedule]) -> list[Medicine]:
    """Group schedules by prescription (no queries)."""
    by_rx: dict[int, Medicine] = {}
    for schedule in schedules:
        rx = schedule.prescription
        by_rx.setdefault(rx.pk, Medicine(prescription=rx)).schedules.append(schedule)
    return list(by_rx.values())


def own_prescription(patient: Patient, prescription_id: int) -> Prescription:
    """One of the patient's own current prescriptions, or 404."""
    return get_object_or_404(Prescription.objects.current().select_related("drug"), pk=prescription_id, patient=patient)


def own_planned_dose(patient: Patient, planned_dose_id: int) -> PlannedDose:
    """One of the patient's own planned doses with its prescription and drug, or 404 (1 query)."""
    planned = get_object_or_404(
        PlannedDose.objects.select_related("prescription__drug").filter(prescription__entered_in_error_at__isnull=True),
        pk=planned_dose_id,
        patient=patient,
    )
    planned.prescription.patient = patient  # already loaded: saves the service a query
    return planned


def own_dose_event(patient: Patient, event_id: int) -> DoseEvent:
    """One of the patient's own dose events with its drug, or 404 (1 query)."""
    return get_object_or_404(DoseEvent.objects.select_related("prescription__drug"), pk=event_id, patient=patient)


def undoable_logs(patient: Patient, now: dt.datetime) -> list[DoseEvent]:
    """The patient's own taps still inside the undo window, newest first (1 query)."""
    since = now - dt.timedelta(minutes=clinical.get("PATIENT_UNDO_MINUTES"))
    return list(
        DoseEvent.objects.current()
        .filter(
            patient=patient,
            reporter=DoseEvent.Reporter.PATIENT,
            recorded_by_id=patient.user_id,
            outside_clinic_report=False,
            created_at__gte=since,
        )
        .select_related("prescription__drug")
        .order_by("-created_at", "-id")
    )


# --- Today ----------------------------------------------------------------------------------


def _logged(field_name: str) -> Subquery:
    events = DoseEvent.objects.current().filter(planned_dose=OuterRef("pk")).order_by("-occurred_at")
    return Subquery(events.values(field_name)[:1])


# Wider than any gap between a dose's UTC time and its local day, even one planned in a zone
# the patient has since left (UTC offsets span 26 hours).
LOCAL_DAY_MARGIN = dt.timedelta(days=2)


def planned_doses_between(patient: Patient, first: dt.date, last: dt.date) -> QuerySet[PlannedDose]:
    """The patient's planned doses on local days ``first`` to ``last``, cancelled ones left out.

    The local days decide; the UTC bounds around them only let the (patient, due_at) index
    read those days instead of the patient's whole history.
    """
    zone = patient.zone
    return PlannedDose.objects.filter(
        patient=patient,
        due_at__gte=dt.datetime.combine(first, dt.time.min, tzinfo=zone) - LOCAL_DAY_MARGIN,
        due_at__lt=dt.datetime.combine(last, dt.time.min, tzinfo=zone) + dt.timedelta(days=1) + LOCAL_DAY_MARGIN,
        local_date__gte=first,
        local_date__lte=last,
        prescription__entered_in_error_at__isnull=True,
    ).exclude(status=PlannedDose.Status.CANCELLED)


@dataclass(frozen=True)
class Due:
    instrument: str
    name: str
    last_date: dt.date | None
    due_date: dt.date | None  # None: never done, so due now
    today: dt.date

    @property
    def is_due(self) -> bool:
        return self.due_date is None or self.due_date <= self.today

    @property
    def untranslated(self) -> bool:
        """Shown in English to this patient: no official translation in the active language."""
        return not instruments.wording(scales.get_scale(self.instrument)).translated


INSTRUMENT_NAMES = {
    "phq9": gettext_lazy("Mood questionnaire (PHQ-9)"),
    "gad7": gettext_lazy("Anxiety questionnaire (GAD-7)"),
    "fibser": gettext_lazy("Weekly side-effect check-in"),
    "asex": gettext_lazy("Sex life and medicines (ASEX)"),
    "pcl5": gettext_lazy("Stress after a very stressful experience (PCL-5)"),
}


def _in_force(today: dt.date) -> QuerySet[Prescription]:
    """Prescriptions in force on ``today`` of the outer patient (for an Exists)."""
    return (
        Prescription.objects.current()
        .filter(patient=OuterRef("pk"), start_date__lte=today)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .exclude(status=Prescription.Status.STOPPED)
    )


def _names_ptsd() -> Q:
    """[P] PCL5_INDICATION_WORDS: an indication naming PTSD, in any letter case."""
    words = Q()
    for word in clinical.get("PCL5_INDICATION_WORDS"):
        words |= Q(indication__icontains=word)
    return words


def questionnaires_due(patient: Patient, now: dt.datetime) -> list[Due]:
    """Each questionnaire offered to the patient, with the day it was last and is next due (1 query).

    The weekly ones for everybody; ASEX and PCL-5 only for the courses they follow, each on its
    own cadence. One query: the patient row, annotated with whether each course-bound
    questionnaire applies and with the last completion of each questionnaire.
    """
    today = local_today(patient, now)
    codes = (*WEEKLY, *BY_COURSE)
    annotations = {
        f"last_{code}": Subquery(
            Assessment.objects.current()
            .filter(patient=OuterRef("pk"), instrument=code)
            .order_by("-completed_at")
            .values("completed_at")[:1]
        )
        for code in codes
    }
    row = (
        Patient.objects.filter(pk=patient.pk)
        .annotate(
            offer_asex=Exists(_in_force(today).filter(drug__drug_class__in=clinical.get("ASEX_DRUG_CLASSES"))),
            offer_pcl5=Exists(_in_force(today).filter(_names_ptsd())),
            **annotations,
        )
        .values("offer_asex", "offer_pcl5", *annotations)
        .get()
    )
    intervals = dict.fromkeys(WEEKLY, "CHECKIN_INTERVAL_DAYS") | BY_COURSE
    rows = []
    for code in codes:
        if code in BY_COURSE and not row[f"offer_{code}"]:
            continue
        last = row[f"last_{code}"]
        done = last.astimezone(patient.zone).date() if last else None
        interval = dt.timedelta(days=clinical.get(intervals[code]))
        rows.append(
            Due(
                instrument=code,
                name=INSTRUMENT_NAMES[code],
                last_date=done,
                due_date=done + interval if done else None,
                today=today,
            )
        )
    return rows


@dataclass
class Today:
    date: dt.date
    doses: list[PlannedDose]  # today's, in order of time
    left_from_yesterday: list[PlannedDose]  # yesterday's doses still open (logged after midnight)
    as_needed: list[DoseSchedule]  # PRN medicines the patient logs themselves
    clinic_only: list[Prescription]  # given at the clinic: only the outside-clinic report path
    due: list[Due]

    @property
    def due_now(self) -> list[Due]:
        return [d for d in self.due if d.is_due]


def today_for_patient(patient: Patient, now: dt.datetime) -> Today:
    """Everything the "Today" page shows, in 3 queries whatever the course length."""
    today = local_today(patient, now)
    yesterday = today - dt.timedelta(days=1)
    # Query 1: yesterday's and today's planned doses, with the logged time and skip reason.
    doses = list(
        planned_doses_between(patient, yesterday, today)
        .select_related("prescription__drug")
        .annotate(logged_at=_logged("occurred_at"), logged_skip_reason=_logged("skip_reason"))
        .order_by("due_at", "id")
    )
    # Query 2: the schedules in force (PRN medicines and clinic-only drugs come from these).
    schedules = active_schedules(patient, now)
    clinic_only = [m.prescription for m in medicines(schedules) if m.prescription.drug.in_clinic_only]
    return Today(
        date=today,
        doses=[d for d in doses if d.local_date == today],
        left_from_yesterday=[
            d
            for d in doses
            if d.local_date == yesterday and d.status in OPEN_STATUSES and not d.prescription.drug.in_clinic_only
        ],
        as_needed=[s for s in schedules if s.kind == DoseSchedule.Kind.PRN and not s.prescription.drug.in_clinic_only],
        clinic_only=clinic_only,
        # Query 3: the last completion of each weekly questionnaire.
        due=questionnaires_due(patient, now),
    )


# --- Before a clinic session (issue 16) -----------------------------------------------------


# The default wording of clinical.ESK_BEFORE_SESSION_ADVICE, marked for the catalogue: the page
# translates each line as it shows it (_before_session.html). A clinic's own wording has no
# translation and is shown as the clinic wrote it.
BEFORE_SESSION_ADVICE_MESSAGES = (
    gettext_noop("Do not eat for 2 hours before your session: the medicine can make you feel sick."),
    gettext_noop("Do not drink anything for 30 minutes before your session."),
    gettext_noop(
        "Arrange for someone to take you home. Do not drive or use machinery until the next day, after a restful sleep."
    ),
)


def before_session_advice(prescription: Prescription) -> list[str]:
    """The label's preparation advice (clinical.ESK_BEFORE_SESSION_ADVICE) before an esketamine session.

    Only for nasal esketamine given at the clinic: the food and drink advice is its label's. Other
    clinic medicines keep the page's own ride-home and driving line (§2 monitoring).
    """
    if prescription.drug.in_clinic_only and prescription.route == Route.NASAL:
        return list(clinical.get("ESK_BEFORE_SESSION_ADVICE"))
    return []


def next_session_advice(drug_display_name: str, medicines: list[Medicine]) -> list[str]:
    """The advice for the next clinic session, found among the medicines already loaded (no query)."""
    for medicine in medicines:
        if medicine.prescription.drug.display_name == drug_display_name:
            return before_session_advice(medicine.prescription)
    return []


def todays_session_advice(today: Today, now: dt.datetime) -> tuple[PlannedDose, list[str]] | None:
    """Today's first clinic session not yet given nor past its deadline, with what to do before it."""
    for dose in today.doses:
        if dose.status != PlannedDose.Status.PENDING or dose.deadline < now:
            continue
        if advice := before_session_advice(dose.prescription):
            return dose, advice
    return None


# --- Questionnaire results -----------------------------------------------------------------


# The side-effect severities in the patient's words and language (the model's labels stay English).
SEVERITY_LABELS = {
    "mild": gettext_lazy("Mild: noticeable, not in the way"),
    "moderate": gettext_lazy("Moderate: gets in the way of daily life"),
    "severe": gettext_lazy("Severe: stops me doing things"),
}


@dataclass(frozen=True)
class Result:
    assessment: Assessment
    scale: scales.Scale
    crisis: bool  # PHQ-9 item 9 at or above the flag threshold
    care_team_told: bool  # the suicidality flag exists for this response
    side_effects: list[tuple[str, str]]  # (effect in plain words, severity) of a check-in


def own_result(patient: Patient, assessment_id: int) -> Result:
    """One of the patient's own questionnaire responses and whether it needs crisis guidance (≤ 2 queries)."""
    assessment = get_object_or_404(
        Assessment.objects.current(),
        pk=assessment_id,
        patient=patient,
        source=Assessment.Source.PATIENT,
    )
    crisis = item9_positive(assessment.instrument, assessment.answers)
    told = crisis and Flag.objects.filter(dedup_key=suicidality_key(assessment.pk)).exists()
    effects = []
    if assessment.instrument == scales.FIBSER.code:
        effects = [
            (
                r.description if r.effect == side_effect_catalogue.OTHER else _(side_effect_catalogue.label(r.effect)),
                str(SEVERITY_LABELS.get(r.severity, r.get_severity_display())),
            )
            for r in assessment.side_effects.current()
        ]
    return Result(
        assessment=assessment,
        scale=scales.get_scale(assessment.instrument),
        crisis=crisis,
        care_team_told=told,
        side_effects=effects,
    )


@dataclass(frozen=True)
class CheckinDrugs:
    """The medicines in force now, for the weekly check-in: their classes put the side effects
    common to them first; their generic names go into the question ("while taking sertraline…")."""

    names: list[str]
    classes: set[str]


def checkin_drugs(patient: Patient, now: dt.datetime) -> CheckinDrugs:
    """Generic names (a dose change's versions once each, in name order) and classes (1 query)."""
    today = local_today(patient, now)
    rows = (
        Prescription.objects.current()
        .filter(patient=patient, start_date__lte=today)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .exclude(status=Prescription.Status.STOPPED)
        .order_by("drug__name")
        .values_list("drug__name", "drug__drug_class")
        .distinct()
    )
    pairs = list(rows)
    return CheckinDrugs(names=list(dict.fromkeys(name for name, _ in pairs)), classes={c for _, c in pairs})


# --- Progress --------------------------------------------------------------------------------


@dataclass
class Day:
    date: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    in_future: bool = False
    is_past: bool = False  # before today: a dose still pending was not logged (the sweep may not have run yet)

    @property
    def planned(self) -> int:
        return sum(self.counts.values())

    @property
    def state(self) -> str:
        """One word for the day's colour and symbol; missed outranks skipped outranks due."""
        if self.in_future:
            return "future"
        if not self.planned:
            return "none"
        for status in ("missed", "skipped", "pending"):
            if self.counts.get(status):
                return "unlogged" if status == "pending" and self.is_past else status
        return "taken"

    @property
    def summary(self) -> str:
        if self.in_future:
            return _("Not yet")
        if not self.planned:
            return _("No doses planned")
        parts = [_("%(taken)s of %(planned)s taken") % {"taken": self.counts.get("taken", 0), "planned": self.planned}]
        pending = _("%(count)s not logged") if self.is_past else _("%(count)s still due")
        words_for = (("skipped", _("%(count)s skipped")), ("missed", _("%(count)s missed")), ("pending", pending))
        for status, words in words_for:
            if self.counts.get(status):
                parts.append(words % {"count": self.counts[status]})
        return ", ".join(parts)


def adherence_calendar(patient: Patient, now: dt.datetime, weeks: int = 4) -> list[list[Day]]:
    """Weeks (Monday first) of daily dose outcomes, ending with the current week (1 query)."""
    today = local_today(patient, now)
    first = today - dt.timedelta(days=7 * (weeks - 1) + today.weekday())
    counts: dict[dt.date, dict[str, int]] = defaultdict(dict)
    rows = (
        planned_doses_between(patient, first, today)
        .order_by()
        .values("local_date", "status")
        .annotate(n=Count("id"))
        .values_list("local_date", "status", "n")
    )
    for day, status, n in rows:
        counts[day][status] = n
    days = [first + dt.timedelta(days=i) for i in range(7 * weeks)]
    cells = [Day(date=d, counts=counts.get(d, {}), in_future=d > today, is_past=d < today) for d in days]
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


def score_history(patient: Patient, now: dt.datetime, weeks: int = 12) -> dict[str, list[tuple[dt.date, int]]]:
    """PHQ-9 and GAD-7 totals by local day over the last ``weeks`` weeks, oldest first (1 query)."""
    since = now - dt.timedelta(weeks=weeks)
    series: dict[str, list[tuple[dt.date, int]]] = {"phq9": [], "gad7": []}
    rows = (
        Assessment.objects.current()
        .filter(patient=patient, instrument__in=series.keys(), completed_at__gte=since)
        .order_by("completed_at", "id")
        .values_list("instrument", "completed_at", "total")
    )
    for instrument, completed_at, total in rows:
        series[instrument].append((completed_at.astimezone(patient.zone).date(), total))
    return series


def reminder_medicines(patient: Patient, now: dt.datetime) -> list[tuple[Prescription, PrescriptionReminder | None]]:
    """The medicines a reminder can be set for, each with its current choice (2 queries).

    Planned doses only: an as-needed medicine has no due time, and a clinic-only one is
    given at the clinic, where there is nothing to log.
    """
    prescriptions: dict[int, Prescription] = {}
    for schedule in active_schedules(patient, now):
        rx = schedule.prescription
        if schedule.kind != DoseSchedule.Kind.PRN and not rx.drug.in_clinic_only:
            prescriptions.setdefault(rx.pk, rx)
    chosen = {
        r.prescription_id: r for r in PrescriptionReminder.objects.filter(prescription_id__in=list(prescriptions))
    }
    return [(rx, chosen.get(pk)) for pk, rx in prescriptions.items()]
