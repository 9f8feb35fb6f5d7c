"""Demo data for a first look: one clinic, its clinicians and about 20 patients on 8-week courses.

Idempotent: rows are keyed on natural keys (clinic slug, usernames, record numbers) and a
patient whose course already exists is left alone, so a second run changes nothing.
Courses are made through the services with ``now`` set in the past and the clock stepped
forward day by day, so versions, planned doses and dose events look as if the tracker had
been running all along. A fixed seed makes the choices (adherence, timings, scores) repeatable.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from tracker import scheduling
from tracker.models import (
    AdministrativeGender,
    Assessment,
    Clinic,
    Clinician,
    CrisisContact,
    DoseEvent,
    DoseSchedule,
    Drug,
    DrugClass,
    Instrument,
    Patient,
    PlannedDose,
    Prescription,
)
from tracker.services.assessments import submit_assessment
from tracker.services.doses import report_outside_clinic
from tracker.services.measurements import record_measurement, record_weight
from tracker.services.prescriptions import ScheduleSpec, change_dose, prescribe, stop_prescription

User = get_user_model()

SEED = 20261121
CLINIC_SLUG = "riverside"
CLINIC_NAME = "Riverside Psychiatry"
CRISIS_GUIDANCE = (
    "If you are thinking about harming yourself or ending your life, please tell someone now.\n"
    "The duty line answers Monday to Friday, 9am to 5pm. Out of hours, call NHS 111 and choose the "
    "mental health option, or call Samaritans free, day or night.\n"
    "If you are in immediate danger or have harmed yourself, call 999 or go to your nearest A&E."
)
# Shown as tap-to-call buttons after a self-harm answer, below the clinic's own number.
CRISIS_CONTACTS = (
    ("Riverside Psychiatry duty line, Monday to Friday 9am to 5pm", "020 7946 0321"),
    ("NHS 111, choose the mental health option", "111"),
    ("Samaritans, free, day or night", "116 123"),
    ("Emergency services", "999"),
)

# Demo passwords: long and uncommon so they pass the project's validators (see settings).
ADMIN_USERNAME, ADMIN_PASSWORD = "admin", "riverside-admin-demo-2026"
PRESCRIBER_USERNAME, PRESCRIBER_PASSWORD = "dr.adeyemi", "riverside-prescriber-demo-2026"
NURSE_USERNAME, NURSE_PASSWORD = "nurse.okoro", "riverside-nurse-demo-2026"
PATIENT_PASSWORD = "riverside-patient-demo-2026"  # noqa: S105 - published demo login

COURSE_DAYS = 56
START_LOCAL_TIME = "06:00"  # course actions happen before the first dose of the day
ASSESSMENT_LOCAL_TIME = "19:30"
WEIGHT_LOCAL_TIME = "10:15"
# §5 baseline checks the nurse takes at the clinic visit that starts (or raises) a course:
# (kind, value, diastolic) in each kind's stored unit.
BASELINE_STIMULANT = (("blood_pressure", "122", "78"), ("pulse", "74", None))
BASELINE_ANTIPSYCHOTIC = (
    ("blood_pressure", "118", "76"),
    ("fasting_glucose", "92", None),
    ("total_cholesterol", "186", None),
    ("ldl", "108", None),
    ("hdl", "52", None),
    ("triglycerides", "130", None),
)
MISSED_BASELINE_PATIENT = "RVP-0012"  # Oliver Bennett
# Weights on an antipsychotic (clinical-reference §5 antipsychotic_metabolic: baseline, about 4
# and 8 weeks), by record number: (days after the course start, kg). Grace gains 5.7 % by week 8,
# which raises se.metabolic_weight on the next side-effect sweep; Oliver gains 1.4 %, which does not.
WEIGHTS: dict[str, tuple[tuple[int, str], ...]] = {
    "RVP-0011": ((-2, "68.4"), (28, "70.1"), (54, "72.3")),
    "RVP-0012": ((-2, "81.0"), (28, "81.6"), (54, "82.1")),
}
SKIP_REASONS = (
    "Felt sick that morning",
    "Ran out, collecting from the pharmacy tomorrow",
    "Away from home without my tablets",
    "Too drowsy, decided to leave it",
)


@dataclass(frozen=True)
class Step:
    """One prescribing decision, ``day`` days after the course start.

    The first step for a drug prescribes it; later steps for the same drug change the dose
    (a new version) or stop it.
    """

    day: int
    drug: str
    dose: str
    schedules: tuple[ScheduleSpec, ...] | None = None
    reason: str = ""
    stop: bool = False


def daily(*times: str, phase: str = "") -> tuple[ScheduleSpec, ...]:
    return (ScheduleSpec(kind=DoseSchedule.Kind.DAILY, times_of_day=times, phase=phase),)


def on_weekdays(days: tuple[int, ...], time: str, phase: str) -> tuple[ScheduleSpec, ...]:
    return (ScheduleSpec(kind=DoseSchedule.Kind.WEEKDAYS, times_of_day=(time,), weekdays=days, phase=phase),)


COURSES: dict[str, tuple[str, tuple[Step, ...]]] = {
    "sertraline": (
        "Major depressive disorder",
        (
            Step(0, "sertraline", "50", daily("08:00", phase="titration")),
            Step(21, "sertraline", "100", reason="Partial response at 3 weeks, well tolerated: titrate up."),
        ),
    ),
    "venlafaxine": (
        "Major depressive disorder with anxiety",
        (
            Step(0, "venlafaxine", "75", daily("08:30", phase="titration")),
            Step(14, "venlafaxine", "150", reason="Tolerated 75 mg; increase to usual therapeutic dose."),
        ),
    ),
    "methylphenidate": (
        "ADHD (adult)",
        (
            Step(0, "methylphenidate", "10", daily("08:00", "12:30", phase="titration")),
            Step(14, "methylphenidate", "20", reason="Afternoon symptoms persist; no BP or sleep concerns."),
        ),
    ),
    "aripiprazole": (
        "Major depressive disorder, adjunctive treatment",
        (
            Step(0, "sertraline", "100", daily("08:00", phase="maintenance")),
            Step(0, "aripiprazole", "2", daily("08:00", phase="titration")),
            Step(21, "aripiprazole", "5", reason="Adjunct tolerated; increase towards usual range."),
        ),
    ),
    "lorazepam_taper": (
        "Panic disorder: benzodiazepine withdrawal",
        (
            Step(0, "lorazepam", "1", daily("08:00", "14:00", "21:00", phase="taper")),
            Step(14, "lorazepam", "1", daily("08:00", "21:00", phase="taper"), reason="Taper step: drop midday dose."),
            Step(28, "lorazepam", "0.5", reason="Taper step: halve each dose."),
            Step(42, "lorazepam", "0.5", daily("21:00", phase="taper"), reason="Taper step: night dose only."),
            Step(53, "lorazepam", "0.5", stop=True, reason="Taper complete."),
        ),
    ),
    "esketamine": (
        "Treatment-resistant depression",
        (
            Step(0, "escitalopram", "20", daily("08:00", phase="maintenance")),
            Step(0, "esketamine", "56", on_weekdays((1, 4), "10:00", DoseSchedule.Phase.INDUCTION)),
            Step(
                28,
                "esketamine",
                "84",
                on_weekdays((1,), "10:00", DoseSchedule.Phase.MAINTENANCE),
                reason="Induction complete with response; weekly maintenance.",
            ),
        ),
    ),
    "escitalopram": (
        "Generalised anxiety disorder",
        (
            Step(0, "escitalopram", "10", daily("08:00", phase="titration")),
            Step(14, "escitalopram", "20", reason="Anxiety persists at 10 mg; increase."),
        ),
    ),
    "mirtazapine": (
        "Major depressive disorder with insomnia",
        (
            Step(0, "mirtazapine", "15", daily("21:30", phase="titration")),
            Step(21, "mirtazapine", "30", reason="Sleep better, mood not yet: increase."),
        ),
    ),
    "fluoxetine": ("Major depressive disorder", (Step(0, "fluoxetine", "20", daily("08:00")),)),
}


@dataclass(frozen=True)
class Adherence:
    """How a patient takes their doses: the share taken, and runs of days with nothing logged."""

    taken: float
    gaps: tuple[tuple[int, int], ...] = ()  # (first day, last day) after the course start
    lapsed_days: int = 0  # the last days before now with nothing logged

    def logs(self, day: int, days_running: int) -> bool:
        in_gap = any(first <= day <= last for first, last in self.gaps)
        return not in_gap and day < days_running - self.lapsed_days


GOOD, TYPICAL, FAIR = Adherence(0.95), Adherence(0.9), Adherence(0.82)


@dataclass(frozen=True)
class DemoPatient:
    record_number: str
    given_name: str
    family_name: str
    gender: str  # FHIR AdministrativeGender, as the clinic records it
    date_of_birth: dt.date
    tz: str
    course: str
    adherence: Adherence = TYPICAL
    trend: str = "improving"  # improving | slow | worsening
    started_days_ago: int = COURSE_DAYS
    login: str = ""


def _p(
    n: int, given: str, family: str, gender: str, born: tuple[int, int, int], tz: str, course: str, **kw: Any
) -> DemoPatient:
    return DemoPatient(f"RVP-{n:04d}", given, family, gender, dt.date(*born), tz, course, **kw)


LONDON, NEW_YORK = "Europe/London", "America/New_York"
FEMALE, MALE, OTHER = AdministrativeGender.FEMALE, AdministrativeGender.MALE, AdministrativeGender.OTHER
# The two safety events the demo shows first on the worklist (see Command._safety_events).
SUICIDALITY_PATIENT, OUTSIDE_CLINIC_PATIENT = "RVP-0003", "RVP-0016"
# Sofia Romero has not done her weekly check-ins: her §5 FIBSER dates show as overdue.
SKIPS_CHECKINS_PATIENT = "RVP-0007"
# Frequency, intensity, burden: side effects present but not in the way (burden 0-1).
MILD_FIBSER_ANSWERS = ([1, 1, 0], [2, 1, 1], [1, 2, 1], [0, 0, 0])
PATIENTS: tuple[DemoPatient, ...] = (
    _p(1, "Ellie", "Morgan", FEMALE, (1990, 3, 14), LONDON, "sertraline", adherence=GOOD, login="ellie.morgan"),
    _p(2, "Daniel", "Hughes", MALE, (1982, 11, 2), LONDON, "sertraline", started_days_ago=49),
    _p(3, "Priya", "Shah", FEMALE, (1995, 7, 21), LONDON, "sertraline", adherence=FAIR, trend="slow"),
    _p(4, "Marcus", "Reid", MALE, (1977, 1, 30), NEW_YORK, "sertraline", login="marcus.reid"),
    _p(5, "Hannah", "Clarke", FEMALE, (1988, 5, 9), LONDON, "venlafaxine", adherence=GOOD),
    _p(
        6,
        "Tom",
        "Fletcher",
        MALE,
        (1984, 9, 17),
        LONDON,
        "venlafaxine",
        adherence=Adherence(0.85, gaps=((30, 34),), lapsed_days=3),
        trend="worsening",
    ),
    _p(7, "Sofia", "Romero", FEMALE, (1992, 12, 5), "America/Los_Angeles", "venlafaxine", started_days_ago=42),
    _p(8, "Jack", "Turner", MALE, (1999, 2, 11), LONDON, "methylphenidate", login="jack.turner"),
    _p(9, "Aisha", "Bello", FEMALE, (1996, 8, 28), LONDON, "methylphenidate", adherence=FAIR),
    _p(10, "Liam", "O'Connor", MALE, (1991, 4, 3), "Europe/Dublin", "methylphenidate", adherence=GOOD),
    _p(11, "Grace", "Whitfield", FEMALE, (1973, 10, 19), LONDON, "aripiprazole", trend="slow"),
    _p(12, "Oliver", "Bennett", MALE, (1986, 6, 24), NEW_YORK, "aripiprazole", adherence=GOOD),
    _p(13, "Margaret", "Ellis", FEMALE, (1965, 3, 8), LONDON, "lorazepam_taper", adherence=GOOD),
    _p(14, "Kwame", "Asante", MALE, (1979, 12, 29), LONDON, "lorazepam_taper", started_days_ago=54),
    _p(15, "Rachel", "Kim", FEMALE, (1983, 2, 16), LONDON, "esketamine", adherence=GOOD, login="rachel.kim"),
    _p(16, "David", "Price", MALE, (1970, 7, 12), LONDON, "esketamine", adherence=Adherence(0.92)),
    _p(17, "Chloe", "Evans", FEMALE, (1994, 1, 22), LONDON, "escitalopram", started_days_ago=45),
    _p(18, "Lukas", "Weber", MALE, (1987, 9, 1), "Europe/Berlin", "escitalopram", adherence=GOOD),
    _p(19, "Anil", "Mehta", MALE, (1975, 5, 27), "Asia/Kolkata", "mirtazapine"),
    _p(
        20,
        "Zoe",
        "Mitchell",
        OTHER,
        (1998, 11, 13),
        "Australia/Sydney",
        "fluoxetine",
        adherence=Adherence(0.8, gaps=((18, 24),), lapsed_days=2),
    ),
)


@dataclass
class Course:
    """One new patient's course while the simulated clock runs."""

    patient: Patient
    spec: DemoPatient
    start_date: dt.date
    dose_rng: random.Random
    current: dict[str, Prescription] = field(default_factory=dict)

    def local_instant(self, day: dt.date, hhmm: str) -> dt.datetime:
        return scheduling.local_instant(day, hhmm, ZoneInfo(self.patient.timezone))

    def local_today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(ZoneInfo(self.patient.timezone)).date()


def record_dose_event(**kwargs: Any) -> DoseEvent:
    """The one place seeding writes dose events: through the dose service when it is installed."""
    try:
        from tracker.services.doses import record_dose
    except ImportError:  # the dose service predates this command in no release; kept for safety
        return _record_dose_without_service(**kwargs)
    return record_dose(**kwargs)


def _record_dose_without_service(
    *,
    prescription: Prescription,
    occurred_at: dt.datetime,
    reporter: str,
    recorded_by: AbstractBaseUser | None = None,
    outcome: str = DoseEvent.Outcome.TAKEN,
    skip_reason: str = "",
    location: str = DoseEvent.Location.HOME,
    note: str = "",
    now: dt.datetime | None = None,
    planned_dose: PlannedDose | None = None,
) -> DoseEvent:
    """Same effect as ``record_dose`` for a dose logged against its planned slot."""
    now = now or timezone.now()
    patient = prescription.patient
    timing = ""
    if outcome == DoseEvent.Outcome.TAKEN and planned_dose is not None:
        late = occurred_at - planned_dose.due_at > dt.timedelta(hours=2)
        timing = DoseEvent.Timing.LATE if late else DoseEvent.Timing.ON_TIME
    event = DoseEvent.objects.create(
        patient=patient,
        prescription=prescription,
        planned_dose=planned_dose,
        outcome=outcome,
        timing=timing,
        occurred_at=occurred_at,
        local_date=occurred_at.astimezone(patient.zone).date(),
        location=location,
        skip_reason=skip_reason,
        note=note,
        reporter=reporter,
        recorded_by=recorded_by,
        created_at=now,
    )
    if planned_dose is not None:
        taken = outcome == DoseEvent.Outcome.TAKEN
        planned_dose.status = PlannedDose.Status.TAKEN if taken else PlannedDose.Status.SKIPPED
        planned_dose.status_changed_at = now
        planned_dose.save(update_fields=["status", "status_changed_at"])
    return event


def _trajectory(rng: random.Random, trend: str, weeks: int, scale_max: int) -> list[int]:
    """Weekly totals: most patients improve (fast, then levelling off), one worsens."""
    if trend == "worsening":
        start, end = rng.randint(10, 13), rng.randint(19, 21)
    elif trend == "slow":
        start, end = rng.randint(15, 19), rng.randint(11, 14)
    else:
        start, end = rng.randint(15, 21), rng.randint(3, 8)
    if scale_max < 24:  # GAD-7 runs a little lower than PHQ-9
        start, end = round(start * 0.75), round(end * 0.75)
    totals = []
    for week in range(weeks + 1):
        progress = (1 - math.exp(-2.2 * week / 8)) / (1 - math.exp(-2.2))
        value = start + (end - start) * progress + rng.gauss(0, 1.2)
        totals.append(max(0, min(scale_max, round(value))))
    return totals


def _answers(rng: random.Random, total: int, items: int, always_zero: tuple[int, ...] = ()) -> list[int]:
    """Item scores (0-3) adding up to ``total``, spread at random over the items."""
    answers = [0] * items
    for _ in range(total):
        open_items = [i for i in range(items) if i not in always_zero and answers[i] < 3]
        answers[rng.choice(open_items)] += 1
    return answers


class Command(BaseCommand):
    help = "Create idempotent demo data (clinic, clinicians, ~20 patients with 8-week courses) and print the logins."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        with transaction.atomic():
            clinic = self._clinic()
            prescriber = self._clinician(
                clinic, PRESCRIBER_USERNAME, PRESCRIBER_PASSWORD, "Amara", "Adeyemi", Clinician.Role.PRESCRIBER, "Dr"
            )
            nurse = self._clinician(
                clinic, NURSE_USERNAME, NURSE_PASSWORD, "Grace", "Okoro", Clinician.Role.NURSE, "RN"
            )
            self._superuser()
            courses = [c for spec in PATIENTS if (c := self._patient(clinic, prescriber, spec, now)) is not None]
            if courses:
                self._run_clock(courses, prescriber, nurse, now)
                for course in courses:
                    self._assessments(course, prescriber, now)
                    self._weights(course, nurse, now)
                    self._monitoring_visits(course, nurse, now)
                self._safety_events(courses, now)
            # The beat job keeps this up; run it once so the demo has its future plan at once.
            scheduling.extend_horizon(now=now)
        self._print_summary(clinic, len(courses))

    # --- people ------------------------------------------------------------------------

    def _clinic(self) -> Clinic:
        clinic, _ = Clinic.objects.get_or_create(
            slug=CLINIC_SLUG,
            defaults={
                "name": CLINIC_NAME,
                "address": "14 Riverside Walk, London SE1 9XX",
                "phone": "020 7946 0320",
                "crisis_guidance": CRISIS_GUIDANCE,
                "rems_certification": "DEMO-REMS-0001 (demo data)",
            },
        )
        for position, (label, number) in enumerate(CRISIS_CONTACTS):
            CrisisContact.objects.get_or_create(
                clinic=clinic, number=number, defaults={"label": label, "position": position}
            )
        return clinic

    def _user(self, username: str, password: str, **fields: Any) -> AbstractBaseUser:
        """The demo user, created once; the password is reset if changed so the printed logins work."""
        user, created = User.objects.get_or_create(username=username, defaults=fields)
        if created or not user.check_password(password):
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(f"Demo password for {username} fails the validators: {exc.messages}") from exc
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _clinician(
        self, clinic: Clinic, username: str, password: str, first: str, last: str, role: str, title: str
    ) -> Clinician:
        existing = Clinician.objects.filter(user__username=username).select_related("user").first()
        if existing is not None:
            self._user(username, password)
            return existing
        user = self._user(
            username,
            password,
            first_name=first,
            last_name=last,
            email=f"{username}@riverside.example.org",
            is_staff=True,
        )
        try:
            from tracker.services.clinicians import add_clinician
        except ImportError:  # before the clinician service: a staff membership without role groups
            return Clinician.objects.create(user=user, clinic=clinic, role=role, title=title)
        return add_clinician(user=user, clinic=clinic, role=role, title=title)

    def _superuser(self) -> None:
        self._user(
            ADMIN_USERNAME,
            ADMIN_PASSWORD,
            email="admin@riverside.example.org",
            is_staff=True,
            is_superuser=True,
        )

    def _patient(self, clinic: Clinic, prescriber: Clinician, spec: DemoPatient, now: dt.datetime) -> Course | None:
        """Get or create the patient; a Course only when their course has still to be made."""
        start_date = now.date() - dt.timedelta(days=spec.started_days_ago)
        patient, _ = Patient.objects.get_or_create(
            clinic=clinic,
            record_number=spec.record_number,
            defaults={
                "given_name": spec.given_name,
                "family_name": spec.family_name,
                "date_of_birth": spec.date_of_birth,
                "gender": spec.gender,
                "timezone": spec.tz,
                "email": f"{spec.given_name}.{spec.family_name}@example.org".lower().replace("'", ""),
                "responsible_clinician": prescriber,
                "created_at": now - dt.timedelta(days=spec.started_days_ago + 3),
                # §1 setting: esketamine outpatients are enrolled in the REMS before the first session.
                "rems_enrolled_on": start_date - dt.timedelta(days=7) if spec.course == "esketamine" else None,
            },
        )
        if spec.login and patient.user_id is None:
            patient.user = self._user(
                spec.login, PATIENT_PASSWORD, first_name=spec.given_name, last_name=spec.family_name
            )
            patient.save(update_fields=["user", "updated_at"])
        elif spec.login:
            self._user(spec.login, PATIENT_PASSWORD)
        if patient.prescriptions.exists():
            return None
        rng = random.Random(f"{SEED}:{spec.record_number}:doses")  # noqa: S311 - repeatable demo data
        return Course(patient, spec, start_date, rng)

    # --- the simulated clock -------------------------------------------------------------

    def _run_clock(self, courses: list[Course], prescriber: Clinician, nurse: Clinician, now: dt.datetime) -> None:
        """Step time from the earliest course start to now, as the beat job and patients would.

        Prescribing decisions happen at their instants, the horizon job runs each midnight
        (UTC) and the doses due since the previous instant are logged, so every version's
        planned doses exist and are taken (or not) while that version was current.
        """
        timeline: list[tuple[dt.datetime, int, Callable[[dt.datetime], object]]] = []
        for course in courses:
            for step in COURSES[course.spec.course][1]:
                day = course.start_date + dt.timedelta(days=step.day)
                at = course.local_instant(day, START_LOCAL_TIME)
                if at < now:
                    timeline.append((at, len(timeline), self._step_action(course, step, day, prescriber)))
        first_day = min(c.start_date for c in courses)
        for offset in range((now.date() - first_day).days + 1):
            tick = dt.datetime.combine(first_day + dt.timedelta(days=offset), dt.time(), tzinfo=dt.UTC)
            timeline.append((tick, len(timeline), lambda at: scheduling.extend_horizon(now=at)))
        timeline.sort(key=lambda item: item[:2])

        by_patient = {c.patient.pk: c for c in courses}
        since = timeline[0][0] - dt.timedelta(seconds=1)
        for at, _, action in timeline:
            self._log_doses(by_patient, since, at, nurse, now)
            action(at)
            since = at
        self._log_doses(by_patient, since, now, nurse, now)

    def _step_action(
        self, course: Course, step: Step, day: dt.date, prescriber: Clinician
    ) -> Callable[[dt.datetime], object]:
        def act(at: dt.datetime) -> object:
            drug = Drug.objects.get(name=step.drug)
            current = course.current.get(step.drug)
            if current is None:
                course.current[step.drug] = prescribe(
                    patient=course.patient,
                    drug=drug,
                    dose=Decimal(step.dose),
                    start_date=day,
                    prescriber=prescriber,
                    schedules=step.schedules or (ScheduleSpec(),),
                    indication=COURSES[course.spec.course][0],
                    now=at,
                )
            elif step.stop:
                stop_prescription(prescription=current, end_date=day, reason=step.reason, now=at)
            else:
                course.current[step.drug] = change_dose(
                    prescription=current,
                    new_dose=Decimal(step.dose),
                    effective_date=day,
                    reason=step.reason,
                    prescriber=prescriber,
                    schedules=step.schedules,
                    now=at,
                )
            return None

        return act

    def _log_doses(
        self,
        by_patient: dict[int, Course],
        since: dt.datetime,
        until: dt.datetime,
        nurse: Clinician,
        now: dt.datetime,
    ) -> None:
        """Log (or leave unlogged) each planned dose due in (since, until]."""
        due = (
            PlannedDose.objects.filter(
                patient_id__in=by_patient,
                due_at__gt=since,
                due_at__lte=until,
                status=PlannedDose.Status.PENDING,
            )
            .select_related("prescription__drug", "prescription__patient", "schedule")
            .order_by("due_at", "id")
        )
        for planned in due:
            course = by_patient[planned.patient_id]
            self._log_one(course, planned, nurse, now)

    def _log_one(self, course: Course, planned: PlannedDose, nurse: Clinician, now: dt.datetime) -> None:
        rng = course.dose_rng
        draw, jitter, late = rng.random(), rng.gauss(8, 20), rng.random()
        day = (planned.local_date - course.start_date).days
        days_running = (now.date() - course.start_date).days
        rx = planned.prescription
        in_clinic = rx.drug.in_clinic_only
        adherence = course.spec.adherence
        if not in_clinic and not adherence.logs(day, days_running):
            return
        if draw > adherence.taken:
            if draw > 1 - (1 - adherence.taken) / 4 and not in_clinic:
                outcome, reason = DoseEvent.Outcome.SKIPPED, SKIP_REASONS[rng.randrange(len(SKIP_REASONS))]
            else:
                return  # never logged: the missed-dose sweep will see it
        else:
            outcome, reason = DoseEvent.Outcome.TAKEN, ""
        minutes = max(-40.0, min(60.0, jitter))
        morning = planned.due_at.astimezone(course.patient.zone).hour < 12
        if late < 0.05 and planned.schedule.doses_per_day == 1 and morning and not in_clinic:
            # A once-daily morning dose taken a few hours late; never past local midnight,
            # where it would count towards the next day's total.
            minutes = 150 + 60 * late * 20
        occurred_at = planned.due_at + dt.timedelta(minutes=minutes)
        logged_at = occurred_at + dt.timedelta(minutes=5)
        if logged_at > now:
            return  # still ahead of the real clock: left as due
        if in_clinic:
            reporter, recorded_by, location = DoseEvent.Reporter.CLINICIAN, nurse.user, DoseEvent.Location.CLINIC
        else:
            reporter, recorded_by, location = DoseEvent.Reporter.PATIENT, course.patient.user, DoseEvent.Location.HOME
        record_dose_event(
            prescription=rx,
            occurred_at=occurred_at,
            reporter=reporter,
            recorded_by=recorded_by,
            outcome=outcome,
            skip_reason=reason,
            location=location,
            now=logged_at,
        )

    # --- questionnaires ------------------------------------------------------------------

    def _assessments(self, course: Course, prescriber: Clinician, now: dt.datetime) -> None:
        """Weekly PHQ-9 and GAD-7 from the intake visit two days before the first dose, and the
        weekly check-in's FIBSER from the first week on."""
        rng = random.Random(f"{SEED}:{course.spec.record_number}:scores")  # noqa: S311 - repeatable demo data
        weeks = COURSE_DAYS // 7
        phq = _trajectory(rng, course.spec.trend, weeks, 24)  # item 9 stays 0 here; _safety_events adds one answer
        gad = _trajectory(rng, course.spec.trend, weeks, 21)
        for week in range(weeks + 1):
            day = course.start_date + dt.timedelta(days=7 * week - 2)
            completed_at = course.local_instant(day, ASSESSMENT_LOCAL_TIME)
            if completed_at > now:
                break
            recorded_by = prescriber.user if week == 0 else course.patient.user
            for instrument, total, items, zero in (
                (Instrument.PHQ9, phq[week], 9, (8,)),
                (Instrument.GAD7, gad[week], 7, ()),
            ):
                Assessment.objects.create(
                    patient=course.patient,
                    instrument=instrument,
                    answers=_answers(rng, total, items, zero),
                    completed_at=completed_at,
                    source=Assessment.Source.PATIENT,
                    recorded_by=recorded_by,
                    created_at=completed_at,
                )
            if week > 0 and course.spec.record_number != SKIPS_CHECKINS_PATIENT:
                # The weekly check-in (FIBSER), which also meets §5's FIBSER weeks: only one demo
                # patient shows the check-in and the FIBSER dates overdue.
                Assessment.objects.create(
                    patient=course.patient,
                    instrument=Instrument.FIBSER,
                    answers=rng.choice(MILD_FIBSER_ANSWERS),
                    completed_at=completed_at,
                    source=Assessment.Source.PATIENT,
                    recorded_by=recorded_by,
                    created_at=completed_at,
                )

    def _safety_events(self, courses: list[Course], now: dt.datetime) -> None:
        """What a clinic must see first, through the same services as the portal.

        Priya Shah answers PHQ-9 item 9 ("thoughts that you would be better off dead") with
        "several days" yesterday evening, and David Price reports an esketamine dose taken
        at home yesterday evening: the worklist's top rows, above Tom Fletcher's severe worsening.
        """
        by_record = {course.spec.record_number: course for course in courses}
        if (priya := by_record.get(SUICIDALITY_PATIENT)) is not None:
            submit_assessment(
                patient=priya.patient,
                instrument=Instrument.PHQ9,
                answers=[2, 2, 1, 2, 1, 2, 1, 1, 1],
                source=Assessment.Source.PATIENT,
                recorded_by=priya.patient.user,
                completed_at=priya.local_instant(priya.local_today(now) - dt.timedelta(days=1), "20:30"),
                now=now,
            )
        if (david := by_record.get(OUTSIDE_CLINIC_PATIENT)) is not None:
            esketamine = david.patient.prescriptions.filter(
                status=Prescription.Status.ACTIVE, drug__in_clinic_only=True
            ).first()
            taken_at = david.local_instant(david.local_today(now) - dt.timedelta(days=1), "19:00")
            if esketamine is not None:
                report_outside_clinic(
                    prescription=esketamine,
                    occurred_at=taken_at,
                    reporter=DoseEvent.Reporter.PATIENT,
                    note="Used a spare device at home before work.",
                    now=now,
                )

    def _weights(self, course: Course, nurse: Clinician, now: dt.datetime) -> None:
        """Weighed by the nurse at the intake visit and at the monitoring visits that have come."""
        for day, kg in WEIGHTS.get(course.spec.record_number, ()):
            measured_at = course.local_instant(course.start_date + dt.timedelta(days=day), WEIGHT_LOCAL_TIME)
            if measured_at > now:
                break
            record_weight(
                patient=course.patient, weight_kg=Decimal(kg), measured_at=measured_at, recorded_by=nurse.user, now=now
            )

    def _monitoring_visits(self, course: Course, nurse: Clinician, now: dt.datetime) -> None:
        """§5's baseline checks at the start of each stimulant version (baseline and every dose
        increase) and of each new antipsychotic course, taken by the nurse at the clinic.

        Oliver Bennett's baseline bloods were never taken, so his course shows them overdue.
        """
        for rx in Prescription.objects.filter(patient=course.patient).select_related("drug").order_by("start_date"):
            if rx.drug.drug_class == DrugClass.STIMULANT:
                taken = BASELINE_STIMULANT
            elif rx.drug.drug_class in DrugClass.antipsychotics() and rx.replaces_id is None:
                taken = () if course.spec.record_number == MISSED_BASELINE_PATIENT else BASELINE_ANTIPSYCHOTIC
            else:
                continue
            measured_at = course.local_instant(rx.start_date, WEIGHT_LOCAL_TIME)
            if measured_at > now:
                continue
            for kind, value, diastolic in taken:
                record_measurement(
                    patient=course.patient,
                    kind=kind,
                    value=Decimal(value),
                    diastolic=Decimal(diastolic) if diastolic else None,
                    measured_at=measured_at,
                    recorded_by=nurse.user,
                    now=now,
                )

    # --- output ----------------------------------------------------------------------------

    def _print_summary(self, clinic: Clinic, created: int) -> None:
        patients = Patient.objects.filter(clinic=clinic)
        portals = (
            patients.filter(user__isnull=False)
            .select_related("user")
            .prefetch_related(
                Prefetch(
                    "prescriptions",
                    queryset=Prescription.objects.filter(status=Prescription.Status.ACTIVE).select_related("drug"),
                    to_attr="active_prescriptions",
                )
            )
            .order_by("record_number")
        )
        out = self.stdout.write
        out(self.style.SUCCESS(f"Demo data ready: {clinic.name}, {patients.count()} patients ({created} new courses)."))
        out("Clinicians sign in at /admin/:")
        out(f"  prescriber   {PRESCRIBER_USERNAME:<16} {PRESCRIBER_PASSWORD}")
        out(f"  nurse        {NURSE_USERNAME:<16} {NURSE_PASSWORD}")
        out(f"  superuser    {ADMIN_USERNAME:<16} {ADMIN_PASSWORD}")
        out("Patients sign in at /accounts/login/ (their current course in brackets):")
        for portal in portals:
            courses = ", ".join(f"{rx.drug} {rx.dose_text}" for rx in portal.active_prescriptions) or "no active course"
            out(f"  patient      {portal.user.get_username():<16} {PATIENT_PASSWORD}  ({portal.full_name}: {courses})")
