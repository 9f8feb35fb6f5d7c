"""The missed-dose sweep (clinical-reference §7 grace and escalation).

Steps, repeated in batches until nothing is left:
1. Claim: one UPDATE turns pending planned doses whose deadline has passed into
   "missed" and returns their ids. Only rows this statement changed are acted on, so a
   second sweep, or a second worker (``SKIP LOCKED`` on PostgreSQL), finds nothing to do.
2. Context: one aggregate query per batch gives, for each (patient, drug) touched, the
   current run of consecutive misses and the 7-day taken share.
3. Flags: one insert raises a warning per missed dose, and an urgent flag per
   (patient, drug) that crossed an escalation threshold; the partial unique constraint
   drops any that already exist.
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
from tracker.models import Flag, FlagKind, PlannedDose, Severity
from tracker.rules.base import SweepResult
from tracker.rules.sql import is_postgres, placeholders, ts
from tracker.services.doses import missed_flag_key
from tracker.services.flags import build_flag, raise_flags

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
CLINIC_ONLY_PRESCRIPTIONS = """
    SELECT rx.id FROM tracker_prescription rx JOIN tracker_drug d ON d.id = rx.drug_id WHERE d.in_clinic_only
"""


def _claim(now: dt.datetime, limit: int) -> list[int]:
    lock = "FOR UPDATE SKIP LOCKED" if is_postgres() else ""
    sql = f"""
        UPDATE tracker_planneddose SET status = 'missed', status_changed_at = %s
        WHERE id IN (
            SELECT id FROM tracker_planneddose
            WHERE status = 'pending' AND deadline <= %s
              AND prescription_id NOT IN ({CLINIC_ONLY_PRESCRIPTIONS})
            ORDER BY deadline, id LIMIT %s {lock}
        ) AND status = 'pending'
        RETURNING id
    """  # noqa: S608 - no user input; only the lock clause is interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [ts(now), ts(now), limit])
        return [row[0] for row in cursor.fetchall()]


def _context(patient_ids: list[int], now: dt.datetime) -> dict[tuple[int, int], PairContext]:
    """Per (patient, drug): consecutive misses up to now, and the share window's counts."""
    share_since = now - dt.timedelta(days=clinical.get("ADHERENCE_WINDOW_DAYS"))
    sql = f"""
        WITH recent AS (
            SELECT pd.patient_id, rx.drug_id, pd.due_at, pd.status
            FROM tracker_planneddose pd
            JOIN tracker_prescription rx ON rx.id = pd.prescription_id
            WHERE pd.patient_id IN ({placeholders(patient_ids)})
              AND pd.due_at >= %s AND pd.deadline <= %s
              AND pd.status IN ('taken', 'skipped', 'missed')
        ),
        last_ok AS (
            SELECT patient_id, drug_id,
                   MAX(CASE WHEN status <> 'missed' THEN due_at END) AS last_ok
            FROM recent GROUP BY patient_id, drug_id
        )
        SELECT r.patient_id, r.drug_id,
            SUM(CASE WHEN r.status = 'missed' AND (l.last_ok IS NULL OR r.due_at > l.last_ok)
                THEN 1 ELSE 0 END),
            SUM(CASE WHEN r.status = 'taken' AND r.due_at >= %s THEN 1 ELSE 0 END),
            SUM(CASE WHEN r.due_at >= %s THEN 1 ELSE 0 END)
        FROM recent r
        JOIN last_ok l ON l.patient_id = r.patient_id AND l.drug_id = r.drug_id
        GROUP BY r.patient_id, r.drug_id
    """  # noqa: S608 - placeholders only
    params = [*patient_ids, ts(now - RUN_LOOKBACK), ts(now), ts(share_since), ts(share_since)]
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


def _flags_for(ids: list[int], now: dt.datetime) -> list[Flag]:
    rows = list(
        PlannedDose.objects.filter(id__in=ids)
        .order_by("due_at")
        .values(
            "id",
            "patient_id",
            "due_at",
            "deadline",
            "patient__timezone",
            "prescription__drug_id",
            "prescription__drug__name",
            "prescription__drug__display_name",
            "prescription__dose",
            "prescription__dose_unit",
        )
    )
    context = _context(sorted({r["patient_id"] for r in rows}), now)
    planned_type = ContentType.objects.get_for_model(PlannedDose)  # cached after the first call
    flags: list[Flag] = []
    escalated: set[tuple[int, int]] = set()
    for row in rows:
        drug = row["prescription__drug__display_name"]
        local_due = row["due_at"].astimezone(ZoneInfo(row["patient__timezone"]))
        dose = f"{row['prescription__dose'].normalize():f} {row['prescription__dose_unit']}"
        flags.append(
            build_flag(
                patient=row["patient_id"],
                kind=FlagKind.DOSE_MISSED,
                severity=Severity.WARNING,
                dedup_key=missed_flag_key(row["id"]),
                message=f"{drug} {dose} due at {local_due:%H:%M on %a %d %b} (patient's local time) was not logged.",
                action="Contact the patient to find out whether the dose was taken, and record it if it was.",
                raised_at=row["deadline"],
                subject_type=planned_type,
                subject_id=row["id"],
            )
        )
        pair = (row["patient_id"], row["prescription__drug_id"])
        ctx = context.get(pair)
        if pair in escalated or ctx is None:
            continue
        reason = _escalation(row["prescription__drug__name"], ctx)
        if reason is None:
            continue
        escalated.add(pair)
        risk = clinical.discontinuation_risk(row["prescription__drug__name"]) == "high"
        message = f"{drug}: {reason}."
        action = "Contact the patient today about taking this medicine"
        if risk:
            message += f" {drug} has a high risk of discontinuation symptoms when doses are missed."
            action += " and ask about discontinuation symptoms"
        flags.append(
            build_flag(
                patient=row["patient_id"],
                kind=FlagKind.DOSE_MISSED_REPEATED,
                severity=Severity.URGENT,
                dedup_key=f"{FlagKind.DOSE_MISSED_REPEATED}:patient:{pair[0]}:drug:{pair[1]}",
                message=message,
                action=action + ".",
                raised_at=row["deadline"],
            )
        )
    return flags


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Mark overdue planned doses missed and raise their flags; see the module docstring."""
    examined = raised = 0
    while True:
        with transaction.atomic():
            ids = _claim(now, batch_size)
            if ids:
                raised += raise_flags(_flags_for(ids, now))
        examined += len(ids)
        if len(ids) < batch_size:
            break
    return SweepResult(name="missed_doses", examined=examined, flags_raised=raised)
