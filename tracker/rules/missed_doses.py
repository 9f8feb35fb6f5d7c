"""The missed-dose sweep (clinical-reference §7 grace and escalation).

Steps, repeated in batches until nothing is left:
1. Claim: one UPDATE turns pending planned doses whose deadline has passed into
   "missed" and returns them. Only rows this statement changed are acted on, so a
   second sweep, or a second worker (``SKIP LOCKED`` on PostgreSQL), finds nothing to do.
   The first batch goes by deadline; in a backlog (it came back full) the rest goes
   patient by patient, in batches ``BACKLOG_FACTOR`` times larger, so the next two steps
   read each patient's history about once per sweep, not once per batch.
2. Context: one aggregate query per batch gives, for each (patient, drug) touched, the
   current run of consecutive misses and the 7-day taken share.
3. Flags: one problem per (patient, drug), a warning, or urgent once it crossed an
   escalation threshold, with one fact per missed dose. A few set-based statements insert
   the new problems and fold the rest into the open ones (``store_flags``); the unique
   constraints drop any fact or problem that already exists.
Claim and flags commit together, so a worker killed mid-batch loses nothing: the
batch rolls back and the next sweep claims it again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Case, IntegerField, OuterRef, Subquery, Value, When

from tracker import clinical
from tracker.models import DoseSchedule, FlagKind, PlannedDose, Prescription, Severity
from tracker.rules.base import SweepResult
from tracker.rules.sql import datetime_from_db, is_postgres, ts
from tracker.services.doses import missed_fact_key, missed_problem_key
from tracker.services.flag_insert import _binary_cursor
from tracker.services.flags import NewFact, NewFlag, raise_flags

BATCH_SIZE = 5000
# In a backlog (the first batch came back full) later batches are this many times larger:
# each batch costs a commit and a dozen round trips whatever its size, and 20,000 doses'
# facts stay a few tens of MB, so memory stays bounded.
BACKLOG_FACTOR = 4


@dataclass(frozen=True)
class PairContext:
    run: int
    taken: int
    judged: int


# Planned sessions of clinic-only drugs (ketamine, esketamine) are judged by the ketamine
# sweep, which raises esk.session_missed instead of dose.missed (tracker.rules.ketamine).
NOT_CLINIC_ONLY = """
    NOT EXISTS (
        SELECT 1 FROM tracker_prescription rx JOIN tracker_drug d ON d.id = rx.drug_id
        WHERE rx.id = tracker_planneddose.prescription_id AND d.in_clinic_only
    )
"""
# A batch's order. By deadline uses the small pending-by-deadline index and suits the
# usual sweep, where everything due fits one batch. In a backlog (a batch came back full)
# the rest goes patient by patient (keyset on the patient id), so each batch holds whole
# patients and their history is read once per sweep, not once per batch.
BY_DEADLINE = "ORDER BY deadline, id"
BY_PATIENT = "AND patient_id >= %s ORDER BY patient_id, deadline, id"


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    patient_id: int
    prescription_id: int
    due_at: dt.datetime
    deadline: dt.datetime


@dataclass(frozen=True, slots=True)
class Medicine:
    """What a flag's message says about the prescription, and the patient's zone."""

    drug_id: int
    drug_name: str
    display: str
    label: str  # display name, dose and unit
    zone: ZoneInfo
    high_risk: bool  # §5: a high risk of discontinuation symptoms
    interval_days: int  # the longest gap its schedules plan between dose days


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The §7 escalation settings, read once per batch (``clinical.get`` reads settings each call)."""

    misses: int
    misses_high_risk: int
    min_share: float
    min_judged: int
    window_days: int

    @classmethod
    def current(cls) -> Thresholds:
        return cls(
            misses=clinical.get("ESCALATE_CONSECUTIVE_MISSES"),
            misses_high_risk=clinical.get("ESCALATE_CONSECUTIVE_MISSES_HIGH_RISK"),
            min_share=clinical.get("ADHERENCE_MIN_SHARE"),
            min_judged=clinical.get("ADHERENCE_MIN_JUDGED_DOSES"),
            window_days=clinical.get("ADHERENCE_WINDOW_DAYS"),
        )


class EarliestFresh:
    """Where each (patient, drug)'s misses claimed by this sweep begin, carried across batches.

    The context reads a pair's history only from the last dose taken or skipped before its
    earliest fresh miss. A pair split across batches (a patient at a batch boundary, or one
    in the first batch, which goes by deadline) had fresh misses claimed by an earlier batch,
    and its runs must be judged from those too, as one pass would. Memory stays bounded: only
    the first batch's pairs and the latest batch's are kept, since after the first the
    batches go patient by patient and only the latest one's last patient can continue.
    """

    def __init__(self) -> None:
        self.first: dict[tuple[int, int], dt.datetime] | None = None
        self.latest: dict[tuple[int, int], dt.datetime] = {}

    def get(self, pair: tuple[int, int]) -> dt.datetime | None:
        dues = [due for seen in (self.first or {}, self.latest) if (due := seen.get(pair)) is not None]
        return min(dues, default=None)

    def record(self, batch: dict[tuple[int, int], dt.datetime]) -> None:
        if self.first is None:
            self.first = batch
        else:
            self.latest = batch


def _claim(now: dt.datetime, limit: int, from_patient: int | None) -> list[Claimed]:
    """Mark up to ``limit`` overdue doses missed: by deadline, or patient by patient from ``from_patient``."""
    lock = "FOR UPDATE SKIP LOCKED" if is_postgres() else ""
    order = BY_DEADLINE if from_patient is None else BY_PATIENT
    # PostgreSQL: ``= ANY(ARRAY(…))`` updates the picked rows through the primary key. With
    # ``IN (…)`` the planner hashes the picked ids against a scan of every pending dose once the
    # limit is large (a backlog batch), which cost more than the update itself.
    ids_in, close = ("= ANY(ARRAY(", "))") if is_postgres() else ("IN (", ")")
    sql = f"""
        UPDATE tracker_planneddose SET status = 'missed', status_changed_at = %s
        WHERE id {ids_in}
            SELECT id FROM tracker_planneddose
            WHERE status = 'pending' AND deadline <= %s AND {NOT_CLINIC_ONLY}
            {order} LIMIT %s {lock}
        {close} AND status = 'pending'
        RETURNING id, patient_id, prescription_id, due_at, deadline
    """  # noqa: S608 - no user input; only fixed clauses are interpolated
    params = [ts(now), ts(now), *([] if from_patient is None else [from_patient]), limit]
    if is_postgres():
        # Rows in binary: parsing two timestamps a row as text was the largest Python cost.
        with _binary_cursor(binary_results=True) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [
                (pk, patient, rx, datetime_from_db(due), datetime_from_db(deadline))
                for pk, patient, rx, due, deadline in cursor.fetchall()
            ]
    rows.sort(key=lambda row: (row[1], row[3], row[0]))
    return [Claimed(*row) for row in rows]


# The longest gap between dose days a schedule plans: its N of every N days; at most a week on
# chosen weekdays; a day otherwise. It sizes the run lookback (clinical.repeated_miss_lookback).
SCHEDULE_GAP_DAYS = Case(
    When(kind=DoseSchedule.Kind.EVERY_N_DAYS, then="interval_days"),
    When(kind=DoseSchedule.Kind.WEEKDAYS, then=Value(7)),
    default=Value(1),
    output_field=IntegerField(),
)


def _medicines(prescription_ids: set[int]) -> dict[int, Medicine]:
    longest_gap = Subquery(
        DoseSchedule.objects.filter(prescription=OuterRef("pk"))
        .annotate(gap=SCHEDULE_GAP_DAYS)
        .order_by("-gap")
        .values("gap")[:1],
        output_field=IntegerField(),
    )
    rows = list(
        Prescription.objects.filter(id__in=prescription_ids)
        .annotate(gap=longest_gap)
        .values_list(
            "id", "drug_id", "drug__name", "drug__display_name", "dose", "dose_unit", "patient__timezone", "gap"
        )
    )
    high_risk = {name: clinical.discontinuation_risk(name) == "high" for name in {row[2] for row in rows}}
    return {
        pk: Medicine(
            drug, name, display, f"{display} {dose.normalize():f} {unit}", ZoneInfo(zone), high_risk[name], gap or 1
        )
        for pk, drug, name, display, dose, unit, zone, gap in rows
    }


def _context(
    claimed: list[Claimed], medicines: dict[int, Medicine], now: dt.datetime, earlier: EarliestFresh
) -> dict[tuple[int, int], PairContext]:
    """Per (patient, drug) this batch touched: the longest run of consecutive misses holding a
    dose this sweep marked missed, and the share window's counts.

    Runs are judged where they happened, not only up to now: after an outage, doses missed
    on three days before the patient resumed still make a run of three (gaps and islands:
    within a (patient, drug), consecutive judged doses with the same missed-or-not state
    share ``row_number() - row_number() per state``). A dose this sweep claimed carries
    ``status_changed_at = now``; a run without one was judged by an earlier sweep.

    Only the pairs the batch touched are read, and each only from where its runs can start:
    a run holding a fresh miss cannot reach back past the last dose taken or skipped before
    the pair's earliest fresh miss (found with one backward probe of the (patient, due_at)
    index), nor past the run lookback (``clinical.repeated_miss_lookback`` of the pair's longest
    dose interval: 28 days for a daily drug, 42 for one every 14 days); the share window
    (7 days) is always read. In the usual
    5-minute sweep that is about a week of one drug per pair, not four weeks of every drug
    of the patient.
    """
    first_due: dict[tuple[int, int], dt.datetime] = {}
    gap_days: dict[tuple[int, int], int] = {}
    for dose in claimed:  # sorted by (patient, due_at): the first seen is the earliest
        medicine = medicines[dose.prescription_id]
        pair = (dose.patient_id, medicine.drug_id)
        first_due.setdefault(pair, dose.due_at)
        gap_days[pair] = max(gap_days.get(pair, 1), medicine.interval_days)
    for pair, due in first_due.items():
        before = earlier.get(pair)
        if before is not None and before < due:
            first_due[pair] = before
    earlier.record(first_due)
    if not first_due:
        return {}
    share_since = now - dt.timedelta(days=clinical.get("ADHERENCE_WINDOW_DAYS"))
    lookbacks = {gap: ts(now - clinical.repeated_miss_lookback(gap)) for gap in set(gap_days.values())}
    pairs = [(patient, drug, ts(due), lookbacks[gap_days[patient, drug]]) for (patient, drug), due in first_due.items()]
    if is_postgres():
        touched = (
            "touched AS (SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::timestamptz[], %b::timestamptz[])"
            " AS t(patient_id, drug_id, first_due, lookback))"
        )
        touched_params: list[object] = [list(column) for column in zip(*pairs, strict=True)]
    else:
        touched = (
            "touched(patient_id, drug_id, first_due, lookback) AS"
            f" (VALUES {', '.join(['(%s, %s, %s, %s)'] * len(pairs))})"
        )
        touched_params = [value for pair in pairs for value in pair]
    sql = f"""
        WITH {touched},
        courses AS (
            SELECT t.patient_id, t.drug_id, t.first_due, t.lookback, rx.id AS rx_id
            FROM touched t
            JOIN tracker_prescription rx ON rx.patient_id = t.patient_id AND rx.drug_id = t.drug_id
        ),
        bounds AS (
            SELECT c.patient_id, c.drug_id, COALESCE(MAX((
                SELECT pd.due_at FROM tracker_planneddose pd
                WHERE pd.prescription_id = c.rx_id
                  AND pd.due_at < c.first_due AND pd.due_at >= c.lookback AND pd.deadline <= %s
                  AND pd.status IN ('taken', 'skipped')
                ORDER BY pd.due_at DESC LIMIT 1
            )), MIN(c.lookback)) AS since
            FROM courses c
            GROUP BY c.patient_id, c.drug_id
        ),
        recent AS (
            SELECT c.patient_id, c.drug_id, pd.due_at, pd.status,
                   CASE WHEN pd.status = 'missed' AND pd.status_changed_at = %s THEN 1 ELSE 0 END AS fresh,
                   ROW_NUMBER() OVER (PARTITION BY c.patient_id, c.drug_id ORDER BY pd.due_at)
                   - ROW_NUMBER() OVER (
                       PARTITION BY c.patient_id, c.drug_id, pd.status = 'missed' ORDER BY pd.due_at
                   ) AS island
            FROM bounds b
            JOIN courses c ON c.patient_id = b.patient_id AND c.drug_id = b.drug_id
            JOIN tracker_planneddose pd ON pd.prescription_id = c.rx_id
            WHERE pd.due_at >= CASE WHEN b.since < %s THEN b.since ELSE %s END
              AND pd.due_at <= %s AND pd.deadline <= %s
              AND pd.status IN ('taken', 'skipped', 'missed')
        ),
        runs AS (
            SELECT patient_id, drug_id, COUNT(*) AS length
            FROM recent WHERE status = 'missed'
            GROUP BY patient_id, drug_id, island
            HAVING MAX(fresh) = 1
        ),
        longest AS (
            SELECT patient_id, drug_id, MAX(length) AS run FROM runs GROUP BY patient_id, drug_id
        )
        SELECT r.patient_id, r.drug_id, COALESCE(MAX(l.run), 0),
            SUM(CASE WHEN r.status = 'taken' AND r.due_at >= %s THEN 1 ELSE 0 END),
            SUM(CASE WHEN r.due_at >= %s THEN 1 ELSE 0 END)
        FROM recent r
        LEFT JOIN longest l ON l.patient_id = r.patient_id AND l.drug_id = r.drug_id
        GROUP BY r.patient_id, r.drug_id
    """  # noqa: S608 - placeholders only
    at, share = ts(now), ts(share_since)
    params = [*touched_params, at, at, share, share, at, at, share, share]
    cursor_for = _binary_cursor if is_postgres() else connection.cursor
    with cursor_for() as cursor:
        cursor.execute(sql, params)
        return {
            (p, d): PairContext(int(run), int(taken), int(judged)) for p, d, run, taken, judged in cursor.fetchall()
        }


def _escalation(rules: Thresholds, medicine: Medicine, ctx: PairContext) -> str | None:
    """Why this (patient, drug) needs an urgent flag, or None (§7 escalation)."""
    if ctx.run >= (rules.misses_high_risk if medicine.high_risk else rules.misses):
        return f"{ctx.run} doses missed in a row"
    if ctx.judged >= rules.min_judged and ctx.taken < rules.min_share * ctx.judged:
        return f"only {ctx.taken} of {ctx.judged} doses taken in the last {rules.window_days} days"
    return None


def _flags_for(claimed: list[Claimed], now: dt.datetime, earlier: EarliestFresh | None = None) -> list[NewFlag]:
    """One problem per (patient, drug) touched, with a fact per dose this batch marked missed.

    The problem folds into the open one of the same key (``raise_flags``), so a patient who
    misses a week of sertraline has one row that counts seven misses, not seven rows. It is a
    warning until a §7 escalation threshold is crossed, then urgent (``dose.missed_repeated``),
    raised in place: the flag's history records when, by the tracker.
    """
    medicines = _medicines({c.prescription_id for c in claimed})
    context = _context(claimed, medicines, now, earlier if earlier is not None else EarliestFresh())
    rules = Thresholds.current()
    planned_type = ContentType.objects.get_for_model(PlannedDose).pk  # cached after the first call
    by_pair: dict[tuple[int, int], list[tuple[Claimed, Medicine]]] = {}
    for dose in claimed:
        medicine = medicines[dose.prescription_id]
        by_pair.setdefault((dose.patient_id, medicine.drug_id), []).append((dose, medicine))
    # Patients of one zone share their dose times, so each local time is formatted once a batch.
    local_times: dict[tuple[ZoneInfo, dt.datetime], str] = {}

    def local(due: dt.datetime, zone: ZoneInfo) -> str:
        text = local_times.get((zone, due))
        if text is None:
            text = local_times[zone, due] = f"{due.astimezone(zone):%H:%M on %a %d %b}"
        return text

    flags: list[NewFlag] = []
    for pair, doses in by_pair.items():
        facts = tuple(
            NewFact(
                key=missed_fact_key(dose.id),
                message=(
                    f"{medicine.label} due at {local(dose.due_at, medicine.zone)} "
                    "(patient's local time) was not logged."
                ),
                occurred_at=dose.deadline,
                subject_type_id=planned_type,
                subject_id=dose.id,
            )
            for dose, medicine in doses
        )
        medicine = doses[-1][1]
        ctx = context.get(pair)
        reason = _escalation(rules, medicine, ctx) if ctx is not None else None
        flags.append(_problem(pair, medicine, facts, reason, ctx.run if ctx else None))
    return flags


def _problem(
    pair: tuple[int, int],
    medicine: Medicine,
    facts: tuple[NewFact, ...],
    reason: str | None,
    run: int | None,
) -> NewFlag:
    """The (patient, drug) missed-dose problem: a warning, or urgent with the §7 reason."""
    common = {
        "patient_id": pair[0],
        "dedup_key": missed_problem_key(*pair),
        "raised_at": min(fact.occurred_at for fact in facts),
        "title": medicine.label,
        "streak": run or None,
        "facts": facts,
    }
    if reason is None:
        return NewFlag(
            kind=FlagKind.DOSE_MISSED,
            severity=Severity.WARNING,
            message=facts[-1].message,
            action="Contact the patient to find out whether the doses were taken, and record those that were.",
            **common,
        )
    message = f"{medicine.display}: {reason}."
    action = "Contact the patient today about taking this medicine"
    if medicine.high_risk:
        message += f" {medicine.display} has a high risk of discontinuation symptoms when doses are missed."
        action += " and ask about discontinuation symptoms"
    return NewFlag(
        kind=FlagKind.DOSE_MISSED_REPEATED, severity=Severity.URGENT, message=message, action=action + ".", **common
    )


def _no_jit() -> None:
    """No JIT compilation for the rest of this batch's transaction (PostgreSQL).

    The planner's estimates for the context query and the fold (arrays of unknown length,
    correlated probes) cross ``jit_above_cost``, and compiling them took about 30 ms each in
    the morning burst, longer than running them; these statements read thousands of rows,
    not millions, so the interpreter is faster.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Mark overdue planned doses missed and raise their flags; see the module docstring."""
    examined = raised = 0
    from_patient: int | None = None  # the first batch goes by deadline
    earlier = EarliestFresh()
    limit = batch_size
    while True:
        with transaction.atomic():
            if is_postgres():
                _no_jit()
            claimed = _claim(now, limit, from_patient)
            if claimed:
                raised += raise_flags(_flags_for(claimed, now, earlier))
        examined += len(claimed)
        if len(claimed) < limit:
            return SweepResult(name="missed_doses", examined=examined, flags_raised=raised)
        # A backlog: go patient by patient from the lowest id. The last patient of a batch
        # may have more overdue doses, so the next batch starts at it again.
        from_patient = claimed[-1].patient_id if from_patient is not None else 0
        limit = batch_size * BACKLOG_FACTOR
