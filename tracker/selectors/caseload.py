"""The caseload: every patient of a clinic with where their course stands (issue 17).

One row per patient: the latest PHQ-9 and GAD-7 with the change from baseline and a trend,
response or remission (clinical-reference §4), the 7-day adherence share, the week of
treatment and at the current dose, the next measurement due and the next clinic session.

Two steps, a fixed number of queries whatever the clinic's size or the length of the courses:

1. **The page** (one query). Sorting, filtering and paging happen in SQL over the clinic's
   patients: each sort or filter key is a correlated subquery over an indexed column, added
   with ``alias()`` so it is computed only when the sort or filter asks for it, and the page
   is fetched as ``size + 1`` rows (no COUNT of the clinic).
2. **The details** of the page's patients only, in five bulk queries (courses, scores,
   adherence, clinic sessions, open flags), computed in Python with the domain's own
   functions: ``courses.outcome`` (baseline, ``is_response``, ``is_remission``,
   ``reduction``), ``Course.week_of``, and the due dates of ``rules.side_effects``.

**Which course.** A patient may be on several courses at once (an antidepressant with an
antipsychotic adjunct). The row follows one, the *followed course*: the patient's
antidepressant course if there is one, else any course; of those the one that started last
(the course a new PHQ-9 is judged against, as ``rules.symptoms.course_for`` does). SQL picks
it (``course_root``: the id of its first version) and the details use the same course, so the
week shown and the week sorted on never disagree.

**Filtering on response and remission.** The status filter has to be judged in SQL for the
whole clinic, before the page is cut, while the column is computed in Python for the page.
The ``scale.response`` / ``scale.remission`` flags were not used as the SQL signal because
they say "reached once on this course", not "now" (a patient who responded and relapsed keeps
the flag), they arrive only with the next sweep, and they cannot say "no baseline yet". So the
SQL judges the same facts as the Python, at the latest score:

- the baseline is found as ``courses.baseline`` finds it (the last PHQ-9 in the
  ``BASELINE_DAYS_BEFORE`` days before the course started, else the first in the
  ``BASELINE_DAYS_AFTER`` days after), on the patient's local calendar day (``LocalDay``);
- response and remission are not restated in SQL: their truth tables are generated from
  ``courses.is_response`` and ``courses.is_remission`` over every PHQ-9 total (0–27) each
  time the query is built, so a clinic's override of ``RESPONSE_REDUCTION`` or
  ``REMISSION_BELOW`` changes the filter and the column together.

The status subquery nests one level per fact (course → baseline → latest score), so each is
read once per patient by an index probe and every comparison is between columns;
``tests/test_caseload.py`` checks that the SQL status and the Python status agree.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from zoneinfo import ZoneInfo

from django.db import NotSupportedError
from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    JSONField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import Col, Func, OrderBy
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import Exact, In
from django.db.models.sql.datastructures import BaseTable

from tracker import clinical, courses, scales, trajectory
from tracker.courses import Course, Score
from tracker.models import Assessment, DrugClass, Flag, Patient, PlannedDose, Prescription
from tracker.rules import loaders
from tracker.rules.side_effects import young_adult_due_dates
from tracker.selectors.monitoring import ScheduleDue, dues_by_patient
from tracker.selectors.paging import UncountedPage

PAGE_SIZE = 50
SPARK_POINTS = 8  # scores drawn in a row's sparkline
INSTRUMENTS = ("phq9", "gad7")
JUDGED = (PlannedDose.Status.TAKEN, PlannedDose.Status.SKIPPED, PlannedDose.Status.MISSED)
# Any UTC instant lies within a day of its local calendar day (zones run from UTC-12 to UTC+14),
# so widening the baseline window by a day each side in UTC lets the index narrow the scan
# before the exact local-day test.
UTC_MARGIN_DAYS = 1
# A young adult's PHQ-9 counts for a due date from this many days before it, as the overdue
# rule reads it (``rules.side_effects.monitoring_flags``: ``window_start = latest_due - 3 days``).
YOUNG_ADULT_EARLY_DAYS = 3


# --- SQL building blocks ----------------------------------------------------------------


class LocalDay(Func):
    """The local calendar day of an instant in an IANA zone (a column), as days since 1970-01-01.

    PostgreSQL converts with ``AT TIME ZONE``; SQLite with the zone-aware function Django
    registers on every SQLite connection (``django_datetime_cast_date``, which backs
    ``TruncDate`` there). Both follow the zone's daylight-saving rules for that instant.
    """

    arity = 2
    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def, override]
        raise NotSupportedError("LocalDay needs PostgreSQL or SQLite.")

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return super().as_sql(
            compiler,
            connection,
            template="(((%(expressions)s))::date - DATE '1970-01-01')",
            arg_joiner=" AT TIME ZONE ",
            **extra,
        )

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return super().as_sql(
            compiler,
            connection,
            template="CAST(julianday(django_datetime_cast_date(%(expressions)s, 'UTC')) - 2440587.5 AS INTEGER)",
            **extra,
        )


class DayNumber(Func):
    """A date as days since 1970-01-01, so day arithmetic is integer arithmetic on both backends."""

    arity = 1
    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def, override]
        raise NotSupportedError("DayNumber needs PostgreSQL or SQLite.")

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return super().as_sql(compiler, connection, template="(%(expressions)s - DATE '1970-01-01')", **extra)

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        return super().as_sql(
            compiler, connection, template="CAST(julianday(%(expressions)s) - 2440587.5 AS INTEGER)", **extra
        )


class UtcMidnight(Func):
    """Midnight UTC of ``date + days``, to bound an indexed timestamp column by a date column."""

    arity = 1

    def __init__(self, expression: object, days: int) -> None:
        self.days = int(days)
        super().__init__(expression)

    def as_sql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def, override]
        raise NotSupportedError("UtcMidnight needs PostgreSQL or SQLite.")

    def as_postgresql(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        template = f"((%(expressions)s + {self.days})::timestamp AT TIME ZONE 'UTC')"
        return super().as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[no-untyped-def]
        # SQLite keeps UTC datetimes as "YYYY-MM-DD HH:MM:SS[.ffffff]" text, which sorts as time.
        template = f"datetime(%(expressions)s, '{self.days:+d} days')"
        return super().as_sql(compiler, connection, template=template, **extra)


def _scores(instrument: str) -> QuerySet[Assessment]:
    return Assessment.objects.current().filter(instrument=instrument)


def _latest(instrument: str, patient_ref: str = "pk") -> QuerySet[Assessment]:
    """The newest current score of ``instrument`` of the outer patient: one backward index probe
    of ``tracker_as_patient_instr``."""
    return _scores(instrument).filter(patient_id=OuterRef(patient_ref)).order_by("-completed_at", "-id")


def _roots() -> QuerySet[Prescription]:
    """First versions of courses (no current version before them), the followed course first.

    ``build_courses`` follows ``replaces`` among current versions, so a version whose
    predecessor was entered in error starts its course too.
    """
    return (
        Prescription.objects.current()
        .filter(Q(replaces__isnull=True) | Q(replaces__entered_in_error_at__isnull=False))
        .order_by(
            Case(When(drug__drug_class__in=DrugClass.antidepressants(), then=Value(0)), default=Value(1)),
            "-start_date",
            "-id",
        )
    )


def _course_root() -> Subquery:
    return Subquery(_roots().filter(patient_id=OuterRef("pk")).values("id")[:1])


def _course_start() -> Subquery:
    return Subquery(_roots().filter(patient_id=OuterRef("pk")).values("start_date")[:1])


class Status(enum.StrEnum):
    """Where the followed course stands on PHQ-9 (clinical-reference §4)."""

    REMISSION = "remission"
    RESPONSE = "response"
    NEITHER = "neither"
    NO_BASELINE = "no_baseline"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.REMISSION: "Remission",
    Status.RESPONSE: "Response",
    Status.NEITHER: "Neither response nor remission",
    Status.NO_BASELINE: "No baseline yet",
}


def _truth_tables() -> tuple[list[int], dict[int, list[int]]]:
    """PHQ-9 totals in remission, and for each baseline total the latest totals that are a
    response: computed from ``courses`` each time, never restated."""
    top = scales.get_scale("phq9").max_total
    remission = [t for t in range(top + 1) if courses.is_remission("phq9", t)]
    response = {b: [t for t in range(top + 1) if courses.is_response(b, t)] for b in range(top + 1)}
    return remission, {b: totals for b, totals in response.items() if totals}


def _status_subquery() -> Coalesce:
    """The followed course's PHQ-9 status, judged in SQL as ``Outcome`` judges it in Python.

    Nested so that each fact is a column of its own level: the course's first version (by the
    outer ``course_root``), its baseline score (ordered as ``courses.baseline`` chooses), then
    the latest score, whose level compares itself with the baseline row above it.
    """
    remission, response = _truth_tables()
    before, after = clinical.get("BASELINE_DAYS_BEFORE"), clinical.get("BASELINE_DAYS_AFTER")
    in_remission = Q(total__in=remission)
    responded = reduce(or_, (Q(base_total=b, total__in=totals) for b, totals in response.items()), Q(pk__in=[]))

    # Level 4: the latest score, beside the baseline row (level 3) it is judged against.
    # Only a score after the baseline is an outcome (``courses.outcome``); else "baseline only".
    judged = (
        _latest("phq9", patient_ref="patient_id")
        .annotate(base_total=ExpressionWrapper(OuterRef("total"), output_field=IntegerField()))
        .annotate(
            code=Case(
                When(~Q(completed_at__gt=OuterRef("completed_at")), then=Value(Status.NEITHER.value)),
                When(in_remission, then=Value(Status.REMISSION.value)),
                When(responded, then=Value(Status.RESPONSE.value)),
                default=Value(Status.NEITHER.value),
            )
        )
        .values("code")[:1]
    )

    # Level 3: the baseline, on the patient's local day counted from the course's start day:
    # the last score in the days before the start, else the first in the days after. Two
    # queries, not one ordered by the side of the start: SQLite cannot order a correlated
    # subquery by a column of the query around it.
    def window(first: int, last: int) -> QuerySet[Assessment]:
        return (
            _scores("phq9")
            .filter(
                patient_id=OuterRef("patient_id"),
                completed_at__gte=UtcMidnight(OuterRef("start_date"), first - UTC_MARGIN_DAYS),
                completed_at__lt=UtcMidnight(OuterRef("start_date"), last + 1 + UTC_MARGIN_DAYS),
            )
            .annotate(
                offset=LocalDay("completed_at", OuterRef(OuterRef("timezone"))) - DayNumber(OuterRef("start_date"))
            )
            .filter(offset__gte=first, offset__lte=last)
            .annotate(code=Subquery(judged))
            .values("code")
        )

    prior = window(-before, -1).order_by("-completed_at", "-id")[:1]
    following = window(0, after).order_by("completed_at", "id")[:1]
    # Without a baseline only remission can be judged, on the latest score of all.
    unjudged = (
        _latest("phq9", patient_ref="patient_id")
        .annotate(
            code=Case(When(in_remission, then=Value(Status.REMISSION.value)), default=Value(Status.NO_BASELINE.value))
        )
        .values("code")[:1]
    )
    # Level 2: the followed course's first version.
    course = (
        Prescription.objects.filter(pk=OuterRef("course_root"))
        .order_by()
        .annotate(code=Coalesce(Subquery(prior), Subquery(following), Subquery(unjudged)))
    )
    return Coalesce(Subquery(course.values("code")[:1]), Value(Status.NO_BASELINE.value))


def _adherence_percent(now: dt.datetime) -> Subquery:
    """The share of judged planned doses due in the window that were taken, in per cent."""
    since = now - dt.timedelta(days=clinical.get("ADHERENCE_WINDOW_DAYS"))
    judged = (
        PlannedDose.objects.filter(patient_id=OuterRef("pk"), due_at__gt=since, due_at__lte=now, status__in=JUDGED)
        .order_by()
        .values("patient_id")
        .annotate(
            # COUNT(*), not of a column: with an index holding (patient_id, due_at, status) the
            # probe can stay in the index (docs/benchmarks.md, issue 17).
            percent=Cast(Count(Case(When(status=PlannedDose.Status.TAKEN, then=Value(1)))), FloatField())
            * 100.0
            / Count("*")
        )
        .values("percent")
    )
    return Subquery(judged, output_field=FloatField())


# --- Filters, sorting and the page --------------------------------------------------------


class Sort(enum.StrEnum):
    NAME = "name"
    PHQ9 = "phq9"
    GAD7 = "gad7"
    ADHERENCE = "adherence"
    WEEK = "week"


UNASSIGNED = 0  # ``clinician_id`` for "no responsible clinician"


@dataclass(frozen=True)
class CaseloadFilters:
    """Validated filters and order; None or empty means "any"."""

    status: Status | None = None
    phq9_band: str | None = None
    clinician_id: int | None = None  # UNASSIGNED for patients without one
    words: tuple[str, ...] = ()
    include_discharged: bool = False
    sort: Sort = Sort.NAME
    descending: bool = False


def search_words(text: str) -> tuple[str, ...]:
    """The words of a patient search; commas separate, so "Smith, Ann" is two words."""
    return tuple(text.replace(",", " ").split())


def _matches(word: str) -> Q:
    """Patients whose record number or name starts with ``word``, or a part of the name does
    ("Jones" finds "Smith-Jones"), as the worklist's search reads it. Prefixes, not substrings:
    "an" would match most of a clinic."""
    match = Q(record_number__istartswith=word)
    for name in ("family_name", "given_name"):
        match |= Q(**{f"{name}__istartswith": word})
        match |= Q(**{f"{name}__icontains": f" {word}"}) | Q(**{f"{name}__icontains": f"-{word}"})
    return match


class SortedPatients(BaseTable):
    """The patients' table in ``FROM``, replaced by the same patients already in page order.

    Why: a filter on a computed key (status, band) in the query that sorts makes PostgreSQL
    judge it for every patient of the clinic before its top-N sort. Read from a sorted subquery
    (one with ``ORDER BY`` is never pulled up into the query around it), the outer query keeps
    that order without sorting again, so the filter is judged row by row in page order and the
    ``LIMIT`` stops it when the page is full: a page costs the patients it shows and those it
    skips, not the clinic. The subquery carries the patients' own columns under the table's
    name, so every column reference of the outer query stays valid, and the outer query
    repeats the order, so the result is right whatever a backend does with the inner one.
    """

    def __init__(self, ordered: QuerySet[Patient], alias: str) -> None:
        super().__init__(Patient._meta.db_table, alias)
        self.ordered = ordered

    def as_sql(self, compiler, connection):  # type: ignore[no-untyped-def]
        sql, params = self.ordered.query.get_compiler(connection=connection).as_sql()
        return f"({sql}) {compiler.quote_name_unless_alias(self.table_alias)}", params

    def relabeled_clone(self, change_map):  # type: ignore[no-untyped-def]
        return self.__class__(self.ordered, change_map.get(self.table_alias, self.table_alias))

    @property
    def identity(self) -> tuple:
        return self.__class__, self.table_name, self.table_alias, id(self.ordered)


def _subquery_column(rows: QuerySet[Patient], name: str) -> Col:
    """A column the sorted subquery (``SortedPatients``) selects beside the patients' own."""
    column = FloatField()
    column.set_attributes_from_name(name)
    column.model = Patient  # a Col's identity names the model; never saved or migrated
    return Col(rows.query.get_initial_alias(), column)


def _kept_when(condition: Q | Exact) -> Case:
    """1 where ``condition`` holds, else 0; the filter keeps ``> 0``.

    The same rows as the condition, written so PostgreSQL's planner does not take the filter
    for rare: it guesses that an equality on a computed value keeps 0.5 % of the rows, so a page
    of 51 would look like a scan of the whole clinic, and a plan priced that high passes
    ``jit_above_cost`` (compiling the nested subqueries took seconds, more than running them).
    A ``>`` is guessed to keep a third, which prices the page at about what it reads.
    """
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def _possible_latest_totals(status: Status) -> list[int] | None:
    """The latest PHQ-9 totals with which ``status`` can be judged at all; None when any can.

    From the same truth tables as ``_status_subquery``: remission is judged on the latest score
    in both of its branches, and a response is a latest score in some baseline's response set
    that is not a remission (remission is judged first). One index probe per patient then
    turns away most patients before the nested status subquery is reached. "Neither" and "no
    baseline yet" can follow any latest score (no course, or a latest score that is the baseline).
    """
    remission, response = _truth_tables()
    if status == Status.REMISSION:
        return remission
    if status == Status.RESPONSE:
        return sorted(set().union(*response.values()) - set(remission))
    return None


def _status_is(status: Status) -> Q | Exact:
    """The SQL status filter: the cheap necessary condition first, then the status itself
    (``AND`` is judged left to right and stops at the first false)."""
    exact = Exact(_status_subquery(), Value(status.value))
    totals = _possible_latest_totals(status)
    if totals is None:
        return exact
    return In(Subquery(_latest("phq9").values("total")[:1]), totals) & exact


def caseload(patients: QuerySet[Patient], filters: CaseloadFilters, *, now: dt.datetime) -> QuerySet[Patient]:
    """``patients`` (already clinic-scoped by the caller) filtered and ordered as asked.

    Each key is an ``alias()``: in SQL only where a filter or the order uses it. With a status
    or band filter the patients are read already sorted (``SortedPatients``), so the filter is
    judged only until the page is full.
    """
    if not filters.include_discharged:
        patients = patients.filter(is_active=True)
    for word in filters.words:
        patients = patients.filter(_matches(word))
    if filters.clinician_id == UNASSIGNED:
        patients = patients.filter(responsible_clinician__isnull=True)
    elif filters.clinician_id is not None:
        patients = patients.filter(responsible_clinician_id=filters.clinician_id)
    judged: dict[str, Q | Exact] = {}
    if filters.phq9_band:
        judged["phq9_band"] = Exact(Subquery(_latest("phq9").values("band")[:1]), Value(filters.phq9_band))
    if filters.status is not None:
        judged["status"] = _status_is(filters.status)
    keys = {
        Sort.PHQ9: lambda: Subquery(_latest("phq9").values("total")[:1]),
        Sort.GAD7: lambda: Subquery(_latest("gad7").values("total")[:1]),
        Sort.ADHERENCE: lambda: _adherence_percent(now),
        Sort.WEEK: _course_start,
    }
    by_name = ["family_name", "given_name", "id"]
    rows = patients.select_related("responsible_clinician__user").annotate(course_root=_course_root())
    if filters.sort == Sort.NAME:
        order = [f"-{n}" if filters.descending else n for n in by_name]
        ordered = patients.order_by(*order)
    else:
        # More weeks of treatment means an earlier start: "week" ascending is the start descending.
        descending = filters.descending != (filters.sort == Sort.WEEK)

        def by_key(key: F | Col) -> OrderBy:
            return key.desc(nulls_last=True) if descending else key.asc(nulls_last=True)

        if not judged:
            return rows.alias(sort_key=keys[filters.sort]()).order_by(by_key(F("sort_key")), *by_name)
        ordered = patients.annotate(sort_key=keys[filters.sort]()).order_by(by_key(F("sort_key")), *by_name)
        order = [by_key(_subquery_column(rows, "sort_key")), *by_name]
    if not judged:
        return rows.order_by(*order)
    for name, condition in judged.items():
        rows = rows.alias(**{f"{name}_kept": _kept_when(condition)}).filter(**{f"{name}_kept__gt": 0})
    rows = rows.order_by(*order)
    alias = rows.query.get_initial_alias()
    rows.query.alias_map[alias] = SortedPatients(ordered, alias)
    return rows


# --- The page's details -------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreLine:
    """One instrument in a row: the latest score, the change from baseline and the trend."""

    instrument: str
    name: str
    latest: Score | None
    band: str
    latest_on: dt.date | None  # local day
    baseline: Score | None
    change_points: int | None  # latest - baseline (negative = fewer symptoms)
    change_percent: float | None  # of the baseline, negative = better; None at a baseline of 0
    previous: Score | None  # the score before the latest
    recent: tuple[int, ...]  # the last SPARK_POINTS totals, oldest first

    @property
    def baseline_only(self) -> bool:
        """The baseline is the only score so far: no change to judge yet."""
        return self.baseline is not None and self.change_points is None

    @property
    def trend(self) -> str:
        """The direction since the previous score, in words (readable without colour)."""
        if self.latest is None:
            return ""
        if self.previous is None:
            return "first score"
        step = self.latest.total - self.previous.total
        if step == 0:
            return "→ no change since previous"
        arrow = "↑" if step > 0 else "↓"
        points = abs(step)
        return f"{arrow} {points} point{'s' if points != 1 else ''} since previous"


@dataclass(frozen=True)
class Adherence:
    """Planned doses due in the window: taken over judged (PRN doses are never planned)."""

    window_days: int
    taken: int
    judged: int
    waiting: int  # due but not judged yet (pending until the sweep)

    @property
    def percent(self) -> int | None:
        return round(100 * self.taken / self.judged) if self.judged else None

    @property
    def reason(self) -> str:
        """Why there is no share, when there is none."""
        if self.judged:
            return ""
        if self.waiting:
            return f"{self.waiting} due, none judged yet"
        return f"nothing due in the last {self.window_days} days"


@dataclass(frozen=True)
class Due:
    """A measurement the patient is due to give, on their local calendar day."""

    what: str
    due_on: dt.date
    overdue: bool


@dataclass(frozen=True)
class DueContext:
    """What a due provider may read: the patient's courses and scores, already loaded."""

    patient: Patient
    courses: Sequence[Course]
    scores: Sequence[Score]  # all instruments, oldest first
    today: dt.date  # the patient's local day
    monitoring: Sequence[ScheduleDue] = ()  # §5 schedules' next items (selectors.monitoring)


DueProvider = Callable[[DueContext], Due | None]


def _local_days(ctx: DueContext, instrument: str) -> list[dt.date]:
    zone = ctx.patient.zone
    return [s.completed_at.astimezone(zone).date() for s in ctx.scores if s.instrument == instrument]


def weekly_checkin_due(ctx: DueContext) -> Due | None:
    """The weekly side-effect check-in (FIBSER), from the last one since the active courses
    began, as ``rules.side_effects.monitoring_flags`` dates it."""
    active = [c for c in ctx.courses if c.is_active]
    if not active:
        return None
    start = min(c.start_date for c in active)
    last = max((d for d in _local_days(ctx, "fibser") if d >= start), default=None)
    due = (last or start) + dt.timedelta(days=clinical.get("CHECKIN_INTERVAL_DAYS"))
    return Due("Weekly check-in", due, due < ctx.today)


def young_adult_phq9_due(ctx: DueContext) -> Due | None:
    """§5 young_adult_cadence: the first date of ``young_adult_due_dates`` not yet answered by a
    PHQ-9, for an active antidepressant course started under the age limit."""
    phq_days = _local_days(ctx, "phq9")
    early = dt.timedelta(days=YOUNG_ADULT_EARLY_DAYS)
    found = []
    for course in ctx.courses:
        if not course.is_active or course.current.drug_class not in DrugClass.antidepressants():
            continue
        if ctx.patient.age_on(course.start_date) >= clinical.get("YOUNG_ADULT_AGE_BELOW"):
            continue
        for due in young_adult_due_dates(course.last_change_date):
            if not any(d >= due - early for d in phq_days):
                found.append(Due("PHQ-9 (under-25 schedule)", due, due < ctx.today))
                break
    return min(found, key=lambda d: d.due_on, default=None)


def monitoring_schedule_due(ctx: DueContext) -> Due | None:
    """§5 monitoring schedules (weight, BP, glucose, lipids, pulse, FIBSER): the earliest item due."""
    first = min(ctx.monitoring, key=lambda d: (d.due_on, d.schedule), default=None)
    return Due(first.what, first.due_on, first.overdue) if first else None


# The next measurement due is the earliest any provider gives.
DUE_PROVIDERS: tuple[DueProvider, ...] = (weekly_checkin_due, young_adult_phq9_due, monitoring_schedule_due)


def next_due(ctx: DueContext, providers: Sequence[DueProvider] = DUE_PROVIDERS) -> Due | None:
    found = [due for provider in providers if (due := provider(ctx)) is not None]
    return min(found, key=lambda d: (d.due_on, d.what), default=None)


@dataclass(frozen=True)
class Session:
    """The next planned dose of a clinic-only drug (ketamine, esketamine)."""

    drug: str
    due_at: dt.datetime  # in the patient's zone


@dataclass(frozen=True)
class OpenFlags:
    count: int
    top_severity: int | None


@dataclass(frozen=True)
class Screen:
    """The latest ASEX or PCL-5 of a patient, judged on today's thresholds (clinical.py)."""

    instrument: str
    total: int
    positive: bool  # ASEX: §5 positive screen for sexual dysfunction; PCL-5: at or above the cut-off
    on: dt.date  # the patient's local day


@dataclass(frozen=True)
class Screens:
    """The course-bound questionnaires of issue 15: ASEX (SSRIs/SNRIs) and, for PTSD, PCL-5."""

    asex: Screen | None = None
    pcl5: Screen | None = None
    ptsd_course: bool = False  # an active prescription whose indication names PTSD

    @property
    def pcl5_cutoff(self) -> int:
        return clinical.get("PCL5_PROBABLE_PTSD_MIN")


@dataclass(frozen=True)
class CaseloadRow:
    patient: Patient
    zone: ZoneInfo
    today: dt.date  # the patient's local day
    course: Course | None  # the followed course (see the module docstring)
    other_courses: tuple[Course, ...]  # the patient's other active courses
    week: int | None  # week of treatment (week 1 = the first seven days)
    week_at_dose: int | None  # week since the current version started
    phq9: ScoreLine
    gad7: ScoreLine
    status: Status
    adherence: Adherence
    next_due: Due | None
    next_session: Session | None
    flags: OpenFlags
    screens: Screens = field(default_factory=Screens)
    # §4 not_improving after six weeks ([P] TRAJECTORY_NOT_ON_TRACK_FROM_DAY): why the followed
    # course is not on track, empty when it is; shown as decision support, not a decision.
    not_on_track: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseloadPage(UncountedPage):
    """One page of the caseload, found without counting the clinic (see ``caseload_page``)."""

    number: int
    size: int
    rows: list[CaseloadRow] = field(default_factory=list)
    has_next: bool = False

    @property
    def items(self) -> list:
        return self.rows


def _weeks(course: Course, today: dt.date) -> tuple[int, int]:
    """(week of treatment, week at the current dose), as ``selectors.course_summaries`` counts
    them: to today while the course runs, else to its last version's start."""
    end = today if course.is_active else max(v.start_date for v in course.versions)
    return course.week_of(end), course.week_of(end, since=course.last_change_date)


def score_line(instrument: str, scores: Sequence[Score], course: Course | None, zone: ZoneInfo) -> ScoreLine:
    """The latest score of ``instrument`` against the course's baseline (``courses.outcome``)."""
    scale = scales.get_scale(instrument)
    own = [s for s in scores if s.instrument == instrument]  # oldest first
    if course is not None:
        result = courses.outcome(instrument, own, course.start_date, zone)
        baseline, latest = result.baseline, result.latest
    else:
        baseline, latest = None, (own[-1] if own else None)
    shown = latest or baseline  # a baseline alone is still the latest score there is
    previous = None
    if shown is not None:
        earlier = [s for s in own if (s.completed_at, s.id) < (shown.completed_at, shown.id)]
        previous = earlier[-1] if earlier else None
    change = percent = None
    if baseline is not None and latest is not None:
        change = latest.total - baseline.total
        reduction = courses.reduction(baseline.total, latest.total)
        percent = None if reduction is None else -100 * reduction
    return ScoreLine(
        instrument=instrument,
        name=scale.name,
        latest=shown,
        band=scale.band_for(shown.total) if shown else "",
        latest_on=shown.completed_at.astimezone(zone).date() if shown else None,
        baseline=baseline,
        change_points=change,
        change_percent=percent,
        previous=previous,
        recent=tuple(s.total for s in own[-SPARK_POINTS:]),
    )


def status_of(phq9: Sequence[Score], course: Course | None, zone: ZoneInfo) -> Status:
    """§4 status of the followed course on PHQ-9, from ``courses.outcome``."""
    if course is None:
        return Status.NO_BASELINE
    result = courses.outcome("phq9", phq9, course.start_date, zone)
    if result.remission:
        return Status.REMISSION
    if result.response:
        return Status.RESPONSE
    if result.baseline is None:
        return Status.NO_BASELINE
    return Status.NEITHER


def adherence(patient_ids: Collection[int], now: dt.datetime, days: int | None = None) -> dict[int, Adherence]:
    """Each patient's taken share of the planned doses due in the last ``days`` (default: the
    §7 escalation window); the portal's "My progress" asks for 7 and 30 days (1 query)."""
    days = days or clinical.get("ADHERENCE_WINDOW_DAYS")
    rows = (
        PlannedDose.objects.filter(
            patient_id__in=patient_ids, due_at__gt=now - dt.timedelta(days=days), due_at__lte=now
        )
        .order_by()
        .values("patient_id")
        .annotate(
            taken=Count("id", filter=Q(status=PlannedDose.Status.TAKEN)),
            judged=Count("id", filter=Q(status__in=JUDGED)),
            waiting=Count("id", filter=Q(status=PlannedDose.Status.PENDING)),
        )
    )
    return {r["patient_id"]: Adherence(days, r["taken"], r["judged"], r["waiting"]) for r in rows}


def next_sessions(patient_ids: Collection[int], now: dt.datetime) -> dict[int, tuple[str, dt.datetime]]:
    """Each patient's next pending clinic-only dose not yet past its deadline (a session under
    way today still shows). The pending-by-patient index holds only the planning horizon."""
    rows = (
        PlannedDose.objects.filter(
            patient_id__in=patient_ids,
            status=PlannedDose.Status.PENDING,
            deadline__gte=now,
            prescription__drug__in_clinic_only=True,
        )
        .order_by("patient_id", "due_at", "id")
        .values_list("patient_id", "prescription__drug__display_name", "due_at")
    )
    found: dict[int, tuple[str, dt.datetime]] = {}
    for patient_id, drug, due_at in rows:
        found.setdefault(patient_id, (drug, due_at))
    return found


def _open_flags(patient_ids: Collection[int]) -> dict[int, OpenFlags]:
    """Open work per patient, as the worklist counts it: response and remission are the status column."""
    rows = (
        Flag.objects.filter(patient_id__in=patient_ids)
        .exclude(status=Flag.Status.RESOLVED)
        .exclude(kind__in=clinical.get("GOOD_NEWS_KINDS"))
        .order_by()
        .values("patient_id")
        .annotate(n=Count("id"), top=Max("severity"))
    )
    return {r["patient_id"]: OpenFlags(r["n"], r["top"]) for r in rows}


SCREEN_INSTRUMENTS = ("asex", "pcl5")


def screens(patients: Sequence[Patient]) -> dict[int, Screens]:
    """Each patient's latest ASEX and PCL-5 and whether a PTSD course is active (1 query).

    One row per patient: each latest score is a backward probe of ``tracker_as_patient_instr``.
    An ASEX is judged from its answers by ``scales.asex_dysfunction`` (the rule that raises
    se.sexual_dysfunction), a PCL-5 against clinical.PCL5_PROBABLE_PTSD_MIN, both as they stand
    today. A PTSD course is one whose indication names PTSD, as the portal decides to offer PCL-5.
    """
    latest = {
        f"{code}_{column}": Subquery(_latest(code).values(column)[:1], output_field=output)
        for code in SCREEN_INSTRUMENTS
        for column, output in (("answers", JSONField()), ("total", IntegerField()), ("completed_at", None))
    }
    names_ptsd = reduce(or_, (Q(indication__icontains=word) for word in clinical.get("PCL5_INDICATION_WORDS")))
    ptsd = Prescription.objects.current().filter(
        names_ptsd, patient_id=OuterRef("pk"), status=Prescription.Status.ACTIVE
    )
    rows = Patient.objects.filter(pk__in=[p.pk for p in patients]).annotate(ptsd=Exists(ptsd), **latest)
    zones = {p.pk: p.zone for p in patients}
    found = {}
    for row in rows.values("pk", "ptsd", *latest):
        pk = row["pk"]
        judged = {}
        for code in SCREEN_INSTRUMENTS:
            if row[f"{code}_completed_at"] is None:
                continue
            total = row[f"{code}_total"]
            positive = (
                scales.asex_dysfunction(row[f"{code}_answers"])
                if code == "asex"
                else scales.pcl5_band(total) == scales.PCL5_PROBABLE
            )
            judged[code] = Screen(code, total, positive, row[f"{code}_completed_at"].astimezone(zones[pk]).date())
        found[pk] = Screens(asex=judged.get("asex"), pcl5=judged.get("pcl5"), ptsd_course=row["ptsd"])
    return found


def caseload_rows(patients: Sequence[Patient], *, now: dt.datetime) -> list[CaseloadRow]:
    """The details of ``patients`` (annotated with ``course_root`` by ``caseload``): 6 queries (courses,
    scores, adherence, next sessions, open flags, ASEX/PCL-5 screens), and a seventh for the
    measurements when a patient of the page is under a §5 monitoring schedule."""
    ids = [p.pk for p in patients]
    if not ids:
        return []
    patient_courses = loaders.courses_by_patient(ids)
    scores = loaders.scores_by_patient(ids, (*INSTRUMENTS, "fibser"))
    shares = adherence(ids, now)
    sessions = next_sessions(ids, now)
    flags = _open_flags(ids)
    questionnaires = screens(patients)
    # §5 schedules: one query more, only when a patient of the page is under a measured schedule.
    zones = {p.pk: p.zone for p in patients}
    monitoring = dues_by_patient(zones, patient_courses, now=now, fibser_scores=scores)
    days = clinical.get("ADHERENCE_WINDOW_DAYS")
    rows = []
    for patient in patients:
        zone = patient.zone
        today = now.astimezone(zone).date()
        own = patient_courses.get(patient.pk, [])
        course = next((c for c in own if c.versions[0].id == getattr(patient, "course_root", None)), None)
        week, week_at_dose = _weeks(course, today) if course else (None, None)
        own_scores = scores.get(patient.pk, [])
        phq9 = [s for s in own_scores if s.instrument == "phq9"]
        session = sessions.get(patient.pk)
        rows.append(
            CaseloadRow(
                patient=patient,
                zone=zone,
                today=today,
                course=course,
                other_courses=tuple(c for c in own if c is not course and c.is_active),
                week=week,
                week_at_dose=week_at_dose,
                phq9=score_line("phq9", phq9, course, zone),
                gad7=score_line("gad7", own_scores, course, zone),
                status=status_of(phq9, course, zone),
                adherence=shares.get(patient.pk, Adherence(days, 0, 0, 0)),
                next_due=next_due(DueContext(patient, own, own_scores, today, monitoring.get(patient.pk, ()))),
                next_session=Session(session[0], session[1].astimezone(zone)) if session else None,
                flags=flags.get(patient.pk, OpenFlags(0, None)),
                screens=questionnaires.get(patient.pk, Screens()),
                not_on_track=tuple(trajectory.not_on_track(course, phq9, today, zone)),
            )
        )
    return rows


def caseload_page(rows: QuerySet[Patient], number: int, size: int, *, now: dt.datetime) -> CaseloadPage:
    """Page ``number`` (from 1) of ``rows``: one query for the page (a row more than the page
    tells whether there is a next), then the six (or seven) of ``caseload_rows``."""
    start = (number - 1) * size
    fetched = list(rows[start : start + size + 1])
    return CaseloadPage(
        number=number, size=size, rows=caseload_rows(fetched[:size], now=now), has_next=len(fetched) > size
    )


def status_by_patient(patients: QuerySet[Patient]) -> dict[int, Status]:
    """The SQL-side status of each patient, for checking it against ``status_of`` (tests, audits)."""
    rows = patients.annotate(course_root=_course_root(), status=_status_subquery()).values_list("pk", "status")
    return {pk: Status(status) for pk, status in rows}
