"""Ketamine/esketamine flags (clinical-reference §0, §1, §2, §3).

Three passes, each a fixed number of queries per batch:
1. Missed sessions: one UPDATE claims pending planned sessions of clinic-only drugs whose
   deadline (due + 24 h, §7 grace) has passed and that have no session record, marks them
   missed and returns them; they fold into one ``esk.session_missed`` problem per patient
   and drug, a fact per session. The missed-dose sweep skips
   clinic-only drugs, so a missed session is one flag of one kind, never also ``dose.missed``.
2. Session records not yet settled: early discharge, discharge before recovery, monitoring
   incomplete 6 h after the first device, high BP with no decision, REMS form overdue.
   Each is a one-off finding raised once ever per session (``raise_new_flags``); a session
   is marked settled once its last rule (the 7-day REMS deadline) has been judged, so the
   pass only reads recent sessions, and a sweep that did not run catches up on the next.
3. Active ketamine/esketamine courses: interactions with an active benzodiazepine,
   psychostimulant or MAOI (naming the drug and what to monitor), and fewer than two
   adequate failed antidepressant trials (TRD not confirmed). Once ever per pair of
   courses / per course.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from zoneinfo import ZoneInfo

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from tracker import clinical, esketamine
from tracker.models import FlagKind, InClinicSession, PlannedDose, Prescription, Severity
from tracker.models.sessions import bp_text
from tracker.rules import loaders
from tracker.rules.base import SweepResult, in_batches
from tracker.rules.sql import is_postgres, ts
from tracker.services.doses import missed_fact_key
from tracker.services.flags import NewFact, NewFlag, build_flag, raise_flags, raise_new_flags
from tracker.services.sessions import session_missed_key

BATCH_SIZE = 2000
Status = InClinicSession.Status


# --- 1. Missed sessions ---------------------------------------------------------------------


def _claim_missed_sessions(now: dt.datetime, limit: int) -> list[int]:
    lock = "FOR UPDATE OF pd SKIP LOCKED" if is_postgres() else ""
    sql = f"""
        UPDATE tracker_planneddose SET status = 'missed', status_changed_at = %s
        WHERE id IN (
            SELECT pd.id FROM tracker_planneddose pd
            JOIN tracker_prescription rx ON rx.id = pd.prescription_id
            JOIN tracker_drug d ON d.id = rx.drug_id
            WHERE pd.status = 'pending' AND pd.deadline <= %s AND d.in_clinic_only
              AND NOT EXISTS (
                SELECT 1 FROM tracker_inclinicsession s
                WHERE s.planned_dose_id = pd.id AND s.entered_in_error_at IS NULL
              )
            ORDER BY pd.deadline, pd.id LIMIT %s {lock}
        ) AND status = 'pending'
        RETURNING id
    """  # noqa: S608 - no user input; only the lock clause is interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [ts(now), ts(now), limit])
        return [row[0] for row in cursor.fetchall()]


def _missed_sessions(now: dt.datetime, batch_size: int) -> tuple[int, int]:
    """Pass 1, one batch: (claimed, raised). One problem per (patient, drug), a fact per session."""
    with transaction.atomic():
        ids = _claim_missed_sessions(now, batch_size)
        if not ids:
            return 0, 0
        planned_type = ContentType.objects.get_for_model(PlannedDose).pk
        by_pair: dict[tuple[int, int], list[NewFact]] = {}
        names: dict[tuple[int, int], str] = {}
        rows = PlannedDose.objects.filter(id__in=ids).order_by("due_at", "id")
        for row in rows.values(
            "id", "patient_id", "due_at", "deadline", "patient__timezone",
            "prescription__drug_id", "prescription__drug__display_name",
        ):  # fmt: skip
            local = row["due_at"].astimezone(ZoneInfo(row["patient__timezone"]))
            pair = (row["patient_id"], row["prescription__drug_id"])
            names[pair] = row["prescription__drug__display_name"]
            by_pair.setdefault(pair, []).append(
                NewFact(
                    key=missed_fact_key(row["id"]),
                    message=(
                        f"{names[pair]} clinic session planned for {local:%H:%M on %a %d %b %Y} (local time) "
                        "has no session record."
                    ),
                    occurred_at=row["deadline"],
                    subject_type_id=planned_type,
                    subject_id=row["id"],
                )
            )
        flags = [
            NewFlag(
                patient_id=pair[0],
                kind=FlagKind.ESK_SESSION_MISSED,
                severity=Severity.WARNING,
                dedup_key=session_missed_key(*pair),
                title=f"{names[pair]} clinic sessions",
                message=facts[-1].message,
                action=clinical.get("ESK_MISSED_SESSION_ADVICE"),
                raised_at=facts[0].occurred_at,
                facts=tuple(facts),
            )
            for pair, facts in by_pair.items()
        ]
        return len(ids), raise_flags(flags)


# --- 2. Session records ---------------------------------------------------------------------


def settle_at(session: InClinicSession) -> dt.datetime:
    """When every rule about this session has been judged for good (then it is not read again)."""
    if session.status == Status.WITHHELD or session.entered_in_error_at is not None:
        return session.created_at
    anchor = session.first_device_at or session.created_at
    latest = max(
        dt.timedelta(hours=clinical.get("SESSION_MONITORING_DUE_HOURS")),
        dt.timedelta(days=clinical.get("REMS_FORM_DUE_DAYS")),
        dt.timedelta(minutes=clinical.get("BP_DECISION_GRACE_MINUTES")),
    )
    return anchor + latest


def session_flags(session: InClinicSession, now: dt.datetime) -> list[NewFlag]:
    """The §0 session rules for one session, as judged at ``now``."""
    if session.entered_in_error_at is not None:
        return []
    zone = session.patient.zone
    drug = session.prescription.drug
    anchor = session.first_device_at or session.created_at
    on = f"{anchor.astimezone(zone):%d %b %Y %H:%M}"
    common = {
        "patient": session.patient_id,
        "subject_type": ContentType.objects.get_for_model(InClinicSession),
        "subject_id": session.pk,
    }
    flags: list[NewFlag] = []

    def add(kind: str, severity: int, message: str, action: str, raised_at: dt.datetime) -> None:
        flags.append(
            build_flag(
                kind=kind,
                severity=severity,
                dedup_key=f"{kind}:session:{session.pk}",
                message=message,
                action=action,
                raised_at=raised_at,
                **common,
            )
        )

    if session.discharged_early:
        add(
            FlagKind.ESK_EARLY_DISCHARGE,
            Severity.URGENT,
            f"{drug} session on {on}: discharged {session.observation_minutes} min after the first device, "
            f"before the minimum observation of {session.minimum_observation_minutes} min.",
            "Call the patient today to check they are well and got home safely, and review discharge practice.",
            session.discharge_at,
        )
    if session.discharge_at is not None and (gaps := session.recovery_gaps()):
        add(
            FlagKind.ESK_DISCHARGED_NOT_RECOVERED,
            Severity.URGENT,
            f"{drug} session on {on}: discharged with " + "; ".join(gaps) + ".",
            "Call the patient today to check sedation and dissociation have resolved and they are safe.",
            session.discharge_at,
        )
    monitoring_due = anchor + dt.timedelta(hours=clinical.get("SESSION_MONITORING_DUE_HOURS"))
    if now >= monitoring_due and (missing := session.missing_monitoring()):
        add(
            FlagKind.ESK_MONITORING_INCOMPLETE,
            Severity.WARNING,
            f"{drug} session on {on}: monitoring incomplete after "
            f"{clinical.get('SESSION_MONITORING_DUE_HOURS')} h; missing " + ", ".join(missing) + ".",
            "Complete the session record from the clinic's notes, or mark it entered in error.",
            monitoring_due,
        )
    bp_due = (session.bp_before_at or session.created_at) + dt.timedelta(
        minutes=clinical.get("BP_DECISION_GRACE_MINUTES")
    )
    if session.needs_bp_decision and now >= bp_due:
        limit = f"{clinical.get('BP_THRESHOLD_SYSTOLIC')}/{clinical.get('BP_THRESHOLD_DIASTOLIC')}"
        bp = bp_text(session.bp_before_systolic, session.bp_before_diastolic)
        add(
            FlagKind.ESK_BP_NO_DECISION,
            Severity.URGENT,
            f"{drug} session on {on}: blood pressure before dosing {bp}, above {limit} mmHg, "
            "with no withhold/proceed decision.",
            f"Record whether the dose was withheld or given despite BP {bp} (label threshold {limit}).",
            bp_due,
        )
    rems_due = anchor + dt.timedelta(days=clinical.get("REMS_FORM_DUE_DAYS"))
    if (
        session.route == "nasal"
        and session.care_setting == InClinicSession.CareSetting.OUTPATIENT  # §1: inpatients file no form
        and session.status == Status.COMPLETED
        and session.rems_form_submitted_at is None
        and now >= rems_due
    ):
        add(
            FlagKind.ESK_REMS_FORM_OVERDUE,
            Severity.WARNING,
            f"{drug} session on {on}: the REMS Patient Monitoring Form was not marked submitted within "
            f"{clinical.get('REMS_FORM_DUE_DAYS')} days.",
            "Submit the REMS Patient Monitoring Form for this session and record when it was sent.",
            rems_due,
        )
    return flags


def _sessions(now: dt.datetime, batch_size: int, after_id: list[int]) -> tuple[int, int]:
    """Pass 2, one batch of unsettled sessions in id order: (examined, raised)."""
    with transaction.atomic():
        batch = list(
            InClinicSession.objects.filter(settled_at__isnull=True, id__gt=after_id[0])
            .select_related("patient", "prescription__drug")
            .order_by("id")[:batch_size]
        )
        if not batch:
            return 0, 0
        after_id[0] = batch[-1].id
        flags = [f for s in batch for f in session_flags(s, now)]
        raised = raise_new_flags(flags)
        InClinicSession.objects.filter(id__in=[s.id for s in batch if settle_at(s) <= now]).update(settled_at=now)
        return len(batch), raised


# --- 3. Active courses ----------------------------------------------------------------------


def _interaction_and_trd(patient_ids: Collection[int], now: dt.datetime) -> int:
    people = loaders.patients(patient_ids)
    values = list(
        Prescription.objects.current()
        .filter(patient_id__in=patient_ids)
        .values(*esketamine.RX_ROW_FIELDS, "patient_id", "status", "drug__drug_class", "drug__in_clinic_only")
    )
    scores = loaders.scores_by_patient(patient_ids, ("phq9",))
    by_patient: dict[int, list[dict]] = {}
    for v in values:
        by_patient.setdefault(v["patient_id"], []).append(v)
    flags: list[NewFlag] = []
    for patient_id, own in by_patient.items():
        zone = people[patient_id].zone
        today = now.astimezone(zone).date()
        chains = _active_chains(own)
        ketamine_chains = [c for c in chains if c[-1]["drug__in_clinic_only"]]
        if not ketamine_chains:
            continue
        shortfall = esketamine.trd_shortfall(
            esketamine.judge_trials([esketamine.rx_row(v) for v in own], scores.get(patient_id, []), today, zone)
        )
        for chain in ketamine_chains:
            current, root = chain[-1], chain[0]["id"]
            for other in chains:
                found = esketamine.interaction(other[-1]["drug__drug_class"])
                if found is None:
                    continue
                what, monitor = found
                flags.append(
                    build_flag(
                        patient=patient_id,
                        kind=FlagKind.ESK_INTERACTION,
                        severity=Severity.WARNING,
                        dedup_key=f"{FlagKind.ESK_INTERACTION}:course:{root}:with:{other[0]['id']}",
                        message=(
                            f"{current['drug__display_name']} is prescribed while {other[-1]['drug__display_name']}, "
                            f"{what}, is active: monitor {monitor} during and after each session."
                        ),
                        action=(
                            f"Review whether {other[-1]['drug__display_name']} should continue, and monitor "
                            f"{monitor} at every session."
                        ),
                        raised_at=now,
                    )
                )
            if shortfall is not None:
                flags.append(
                    build_flag(
                        patient=patient_id,
                        kind=FlagKind.ESK_TRD_UNCONFIRMED,
                        severity=Severity.WARNING,
                        dedup_key=f"{FlagKind.ESK_TRD_UNCONFIRMED}:course:{root}",
                        message=f"{current['drug__display_name']} is prescribed with {shortfall}",
                        action=(
                            "Record the earlier antidepressant trials (or mark failed ones) or document why "
                            f"{current['drug__display_name']} is indicated."
                        ),
                        raised_at=now,
                    )
                )
    return raise_new_flags(flags)


def _active_chains(values: list[dict]) -> list[list[dict]]:
    """Courses (version chains, oldest first) whose newest version is active."""
    chains = esketamine.version_chains(values, lambda v: v["id"], lambda v: v["replaces_id"])
    return [c for c in chains if c[-1]["status"] == Prescription.Status.ACTIVE]


def _ketamine_patient_ids_in_chunks(chunk: int = 2000) -> Iterator[list[int]]:
    """Ids of patients with an active clinic-only prescription, in chunks."""
    last = 0
    while True:
        ids = list(
            Prescription.objects.current()
            .filter(
                status=Prescription.Status.ACTIVE,
                drug__in_clinic_only=True,
                patient_id__gt=last,
                patient__is_active=True,
            )
            .order_by("patient_id")
            .values_list("patient_id", flat=True)
            .distinct()[:chunk]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def sweep(*, now: dt.datetime, batch_size: int = BATCH_SIZE) -> SweepResult:
    """Missed sessions, then session records, then active courses; see the module docstring."""
    examined, raised = in_batches(lambda size: _missed_sessions(now, size), batch_size)
    cursor = [0]
    more, more_raised = in_batches(lambda size: _sessions(now, size, cursor), batch_size)
    examined, raised = examined + more, raised + more_raised
    for patient_ids in _ketamine_patient_ids_in_chunks(batch_size):
        examined += len(patient_ids)
        raised += _interaction_and_trd(patient_ids, now)
    return SweepResult(name="ketamine", examined=examined, flags_raised=raised)
