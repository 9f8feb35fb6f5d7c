"""The missed-dose sweep (clinical-reference §7 grace and escalation).

Steps, repeated in batches until nothing is left:
1. Claim: one UPDATE turns pending planned doses whose deadline has passed into
   "missed" and returns them. Only rows this statement changed are acted on, so a
   second sweep, or a second worker (``SKIP LOCKED`` on PostgreSQL), finds nothing to do.
   The first batch goes by deadline; in a backlog (it came back full) the rest goes
   patient by patient, so the next two steps read each patient's history about once
   per sweep, not once per batch.
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

from tracker import clinical
from tracker.models import FlagKind, PlannedDose, Prescription, Severity
from tracker.rules.base import SweepResult
from tracker.rules.sql import datetime_from_db, is_postgres, placeholders, ts
from tracker.services.doses import missed_fact_key, missed_problem_key
from tracker.services.flags import NewFact, NewFlag, raise_flags

BATCH_SIZE = 5000
# Consecutive misses are counted over this much history (a weekly drug needs weeks).
RUN_LOOKBACK = dt.timedelta(days=28)


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


def _claim(now: dt.datetime, limit: int, from_patient: int | None) -> list[Claimed]:
    """Mark up to ``limit`` overdue doses missed: by deadline, or patient by patient from ``from_patient``."""
    lock = "FOR UPDATE SKIP LOCKED" if is_postgres() else ""
    order = BY_DEADLINE if from_patient is None else BY_PATIENT
    sql = f"""
        UPDATE tracker_planneddose SET status = 'missed', status_changed_at = %s
        WHERE id IN (
            SELECT id FROM tracker_planneddose
            WHERE status = 'pending' AND deadline <= %s AND {NOT_CLINIC_ONLY}
            {order} LIMIT %s {lock}
        ) AND status = 'pending'
        RETURNING id, patient_id, prescription_id, due_at, deadline
    """  # noqa: S608 - no user input; only fixed clauses are interpolated
    params = [ts(now), ts(now), *([] if from_patient is None else [from_patient]), limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return sorted(
        (
            Claimed(pk, patient, rx, datetime_from_db(due), datetime_from_db(deadline))
            for pk, patient, rx, due, deadline in rows
        ),
        key=lambda c: (c.patient_id, c.due_at, c.id),
    )


def _medicines(prescription_ids: set[int]) -> dict[int, Medicine]:
    rows = Prescription.objects.filter(id__in=prescription_ids).values_list(
        "id", "drug_id", "drug__name", "drug__display_name", "dose", "dose_unit", "patient__timezone"
    )
    return {
        pk: Medicine(drug, name, display, f"{display} {dose.normalize():f} {unit}", ZoneInfo(zone))
        for pk, drug, name, display, dose, unit, zone in rows
    }


def _context(patient_ids: list[int], now: dt.datetime) -> dict[tuple[int, int], PairContext]:
    """Per (patient, drug): the longest run of consecutive misses holding a dose this sweep
    marked missed, and the share window's counts.

    Runs are judged where they happened, not only up to now: after an outage, doses missed
    on three days before the patient resumed still make a run of three (gaps and islands:
    within a (patient, drug), consecutive judged doses with the same missed-or-not state
    share ``row_number() - row_number() per state``). A dose this sweep claimed carries
    ``status_changed_at = now``; a run without one was judged by an earlier sweep.
    """
    share_since = now - dt.timedelta(days=clinical.get("ADHERENCE_WINDOW_DAYS"))
    sql = f"""
        WITH recent AS (
            SELECT pd.patient_id, rx.drug_id, pd.due_at, pd.status,
                   CASE WHEN pd.status = 'missed' AND pd.status_changed_at = %s THEN 1 ELSE 0 END AS fresh,
                   ROW_NUMBER() OVER (PARTITION BY pd.patient_id, rx.drug_id ORDER BY pd.due_at)
                   - ROW_NUMBER() OVER (
                       PARTITION BY pd.patient_id, rx.drug_id, pd.status = 'missed' ORDER BY pd.due_at
                   ) AS island
            FROM tracker_planneddose pd
            JOIN tracker_prescription rx ON rx.id = pd.prescription_id
            WHERE pd.patient_id IN ({placeholders(patient_ids)})
              AND pd.due_at >= %s AND pd.deadline <= %s
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
    params = [ts(now), *patient_ids, ts(now - RUN_LOOKBACK), ts(now), ts(share_since), ts(share_since)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(p, d): PairContext(int(run), int(taken), int(judged)) for p, d, run, taken, judged in cursor}


def _escalation(drug_name: str, ctx: PairContext) -> str | None:
    """Why this (patient, drug) needs an urgent flag, or None (§7 escalation)."""
    high_risk = clinical.discontinuation_risk(drug_name) == "high"
    needed = clinical.get("ESCALATE_CONSECUTIVE_MISSES_HIGH_RISK" if high_risk else "ESCALATE_CONSECUTIVE_MISSES")
    if ctx.run >= needed:
        return f"{ctx.run} doses missed in a row"
    min_share = clinical.get("ADHERENCE_MIN_SHARE")
    if ctx.judged >= clinical.get("ADHERENCE_MIN_JUDGED_DOSES") and ctx.taken < min_share * ctx.judged:
        return f"only {ctx.taken} of {ctx.judged} doses taken in the last {clinical.get('ADHERENCE_WINDOW_DAYS')} days"
    return None


def _flags_for(claimed: list[Claimed], now: dt.datetime) -> list[NewFlag]:
    """One problem per (patient, drug) touched, with a fact per dose this batch marked missed.

    The problem folds into the open one of the same key (``raise_flags``), so a patient who
    misses a week of sertraline has one row that counts seven misses, not seven rows. It is a
    warning until a §7 escalation threshold is crossed, then urgent (``dose.missed_repeated``),
    raised in place: the flag's history records when, by the tracker.
    """
    medicines = _medicines({c.prescription_id for c in claimed})
    context = _context(sorted({c.patient_id for c in claimed}), now)
    planned_type = ContentType.objects.get_for_model(PlannedDose).pk  # cached after the first call
    by_pair: dict[tuple[int, int], list[tuple[Claimed, Medicine]]] = {}
    for dose in claimed:
        medicine = medicines[dose.prescription_id]
        by_pair.setdefault((dose.patient_id, medicine.drug_id), []).append((dose, medicine))
    flags: list[NewFlag] = []
    for pair, doses in by_pair.items():
        facts = tuple(
            NewFact(
                key=missed_fact_key(dose.id),
                message=(
                    f"{medicine.label} due at {dose.due_at.astimezone(medicine.zone):%H:%M on %a %d %b} "
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
        reason = _escalation(medicine.drug_name, ctx) if ctx is not None else None
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
    if clinical.discontinuation_risk(medicine.drug_name) == "high":
        message += f" {medicine.display} has a high risk of discontinuation symptoms when doses are missed."
        action += " and ask about discontinuation symptoms"
    return NewFlag(
        kind=FlagKind.DOSE_MISSED_REPEATED, severity=Severity.URGENT, message=message, action=action + ".", **common
    )


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Mark overdue planned doses missed and raise their flags; see the module docstring."""
    examined = raised = 0
    from_patient: int | None = None  # the first batch goes by deadline
    while True:
        with transaction.atomic():
            claimed = _claim(now, batch_size, from_patient)
            if claimed:
                raised += raise_flags(_flags_for(claimed, now))
        examined += len(claimed)
        if len(claimed) < batch_size:
            return SweepResult(name="missed_doses", examined=examined, flags_raised=raised)
        # A backlog: go patient by patient from the lowest id. The last patient of a batch
        # may have more overdue doses, so the next batch starts at it again.
        from_patient = claimed[-1].patient_id if from_patient is not None else 0
